"""Generative models: variational autoencoders (``vae``, ``cvae``) and the DCGAN (``dcgan``).

Both families show one face to the generate task and the latent-space tools (:class:`Generative`):
``latent_dim``, ``num_classes`` (0 when unconditional), ``prior(n) -> z``, ``generate(z, y) -> pixels in
[0, 1]``; VAEs add ``encode``/``decode``.
"""

from dcvkit.models.generate import gan, vae  # noqa: F401
from dcvkit.models.generate.base import Generative, stages
from dcvkit.models.generate.gan import DCGAN
from dcvkit.models.generate.vae import VAE

__all__ = ["Generative", "VAE", "DCGAN", "stages"]
