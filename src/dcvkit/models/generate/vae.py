"""Variational autoencoders (Kingma & Welling 2014) and their class-conditional form (Sohn et al. 2015).

The encoder gives q(z | x[, y]) = N(mu, diag exp(logvar)); z = mu + exp(logvar / 2) * eps (the
reparameterisation: the sample is a differentiable function of mu and logvar); the decoder gives the logits
of p(x | z[, y]). ``arch="conv"``: strided 4x4 convolutions (28 -> 14 -> 7; 64 -> 32 -> 16 -> 8 -> 4) and their
transposes; ``arch="mlp"``: flattened pixels -> hidden -> (mu, logvar), the PyTorch examples' design
(784-400-20 with ``hidden=400, latent_dim=20``). ``cvae`` feeds the one-hot class (or a mix, e.g. 0.5/0.5)
to the encoder (as extra constant input channels) and to the decoder (concatenated to z).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dcvkit.choices import VAE_ARCHS
from dcvkit.errors import ConfigError
from dcvkit.models.generate.base import Generative, one_hot, stages
from dcvkit.models.registry import register_model

ARCHS = VAE_ARCHS


class VAE(Generative):
    """Shapes: x (B, C, H, W) float in [0, 1]; y (B,) ids or (B, K) weights; z (B, D); logits (B, C, H, W)."""

    trainer = "vae"
    defaults = {"epochs": 20, "lr": 1e-3, "monitor": "val_loss"}  # val_loss: the negative ELBO

    def __init__(self, *, in_chans: int = 1, img_size: int = 28, latent_dim: int = 20, num_classes: int = 0,
                 arch: str = "conv", width: int = 32, hidden: int = 256):
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"unknown VAE architecture '{arch}'; choose {', '.join(ARCHS)}")
        self.in_chans, self.img_size, self.latent_dim = in_chans, img_size, latent_dim
        self.num_classes, self.arch = num_classes, arch
        k = num_classes
        if arch == "mlp":
            n_in = in_chans * img_size * img_size
            self.encoder = nn.Sequential(nn.Linear(n_in + k, hidden), nn.ReLU(inplace=True))
            self.to_stats = nn.Linear(hidden, 2 * latent_dim)
            self.from_z = nn.Sequential(nn.Linear(latent_dim + k, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, n_in))
            self.decoder = nn.Unflatten(1, (in_chans, img_size, img_size))
            return
        n, s = stages(img_size)
        chans = [min(width * 2 ** i, 8 * width) for i in range(n)]
        enc: list[nn.Module] = []
        c_prev = in_chans + k
        for c in chans:
            enc += [nn.Conv2d(c_prev, c, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        self.feat_shape = (chans[-1], s, s)
        feat = chans[-1] * s * s
        enc += [nn.Flatten(), nn.Linear(feat, hidden), nn.LeakyReLU(0.2, inplace=True)]
        self.encoder = nn.Sequential(*enc)
        self.to_stats = nn.Linear(hidden, 2 * latent_dim)
        self.from_z = nn.Sequential(nn.Linear(latent_dim + k, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, feat), nn.ReLU(inplace=True))
        dec: list[nn.Module] = [nn.Unflatten(1, self.feat_shape)]
        outs = chans[::-1][1:] + [in_chans]
        for i, c in enumerate(outs):
            dec.append(nn.ConvTranspose2d(c_prev, c, 4, 2, 1))
            if i < len(outs) - 1:
                dec.append(nn.ReLU(inplace=True))
            c_prev = c
        self.decoder = nn.Sequential(*dec)

    def _cond(self, y: Tensor | None, x: Tensor) -> Tensor | None:
        return one_hot(y, self.num_classes, x.shape[0], x.device)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) in [0, 1] -> mu, logvar (B, D)."""
        c = self._cond(y, x)
        if self.arch == "mlp":
            h = x.flatten(1)
            h = torch.cat([h, c], 1) if c is not None else h
        else:
            h = x if c is None else torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        mu, logvar = self.to_stats(self.encoder(h)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """z (B, D) -> logits (B, C, H, W) of p(x | z) (sigmoid: the mean image)."""
        c = self._cond(y, z)
        h = torch.cat([z, c], 1) if c is not None else z
        return self.decoder(self.from_z(h))

    @staticmethod
    def reparameterise(mu: Tensor, logvar: Tensor) -> Tensor:
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, C, H, W) in [0, 1] -> (logits (B, C, H, W), mu (B, D), logvar (B, D)), z sampled once."""
        mu, logvar = self.encode(x, y)
        return self.decode(self.reparameterise(mu, logvar), y), mu, logvar

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decode(z, y).sigmoid()


def _build(in_chans: int, img_size, latent_dim: int, num_classes: int, arch: str, width: int, hidden: int
           ) -> VAE:
    size = img_size if isinstance(img_size, int) else int(img_size[0])
    if not isinstance(img_size, int) and int(img_size[0]) != int(img_size[1]):
        raise ConfigError(f"generative models need square images, got {list(img_size)}; resize with --img-size")
    return VAE(in_chans=in_chans, img_size=size, latent_dim=latent_dim, num_classes=num_classes, arch=arch, width=width,
               hidden=hidden)


@register_model("generate")
def vae(num_classes: int = 10, in_chans: int = 1, img_size: int = 28, latent_dim: int = 20, arch: str = "conv",
        width: int = 32, hidden: int = 256, **kwargs) -> VAE:
    """VAE: strided-conv encoder/decoder (32, 64 channels at 28x28), hidden 256, 20-d latent (arch=mlp: 784-h-D)."""
    return _build(in_chans, img_size, latent_dim, 0, arch, width, hidden)


@register_model("generate")
def cvae(num_classes: int = 10, in_chans: int = 1, img_size: int = 28, latent_dim: int = 20, arch: str = "conv",
         width: int = 32, hidden: int = 256, **kwargs) -> VAE:
    """Conditional VAE: the VAE with the one-hot class fed to encoder and decoder (ask for a class or a mix)."""
    if num_classes < 2:
        raise ConfigError("cvae needs a dataset with at least 2 classes to condition on")
    return _build(in_chans, img_size, latent_dim, num_classes, arch, width, hidden)
