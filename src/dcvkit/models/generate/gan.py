"""DCGAN (Radford et al. 2016): a generator of transposed convolutions with batch norm and ReLU, tanh out; a
discriminator of strided convolutions with LeakyReLU(0.2), batch norm after the first layer (or spectral
norm on every layer, Miyato et al. 2018, instead of batch norm), one logit out.

Sizes: 28x28 starts from a 7x7 map (7 -> 14 -> 28), 64x64 from 4x4 (4 -> 8 -> 16 -> 32 -> 64, the paper's
generator); channels ``width * 2^k`` halve towards the image. Weights initialised N(0, 0.02) as in the paper.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from dcvkit.errors import ConfigError
from dcvkit.models.generate.base import Generative, stages
from dcvkit.models.registry import register_model


class Generator(nn.Module):
    """z (B, D) -> tanh images (B, C, H, W) in [-1, 1]."""

    def __init__(self, latent_dim: int, in_chans: int, img_size: int, width: int):
        super().__init__()
        n, s = stages(img_size)
        chans = [width * 2 ** i for i in range(n)][::-1]  # widest first: 64, 32 at 28x28 with width 32
        self.project = nn.Sequential(nn.Linear(latent_dim, chans[0] * s * s, bias=False),
                                     nn.Unflatten(1, (chans[0], s, s)), nn.BatchNorm2d(chans[0]), nn.ReLU(True))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], in_chans, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z))


class Discriminator(nn.Module):
    """Images (B, C, H, W) in [-1, 1] -> logits (B,)."""

    def __init__(self, in_chans: int, img_size: int, width: int, spectral_norm: bool = False):
        super().__init__()
        n, s = stages(img_size)
        sn = _sn if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        c_prev = in_chans
        for i in range(n):
            c = width * 2 ** i
            layers.append(sn(nn.Conv2d(c_prev, c, 4, 2, 1, bias=i == 0 or spectral_norm)))
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_prev = c
        layers += [nn.Flatten(), sn(nn.Linear(c_prev * s * s, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).squeeze(1)


class DCGAN(Generative):
    """``generator`` and ``discriminator`` in one module (one checkpoint). ``forward(z)`` = G(z) in [-1, 1]."""

    trainer = "gan"
    defaults = {"epochs": 15, "lr": 2e-4, "monitor": "val_fid"}  # the DCGAN paper's lr; FID of samples per epoch

    def __init__(self, *, in_chans: int = 1, img_size: int = 28, latent_dim: int = 100, width: int = 32,
                 d_width: int | None = None, spectral_norm: bool = False):
        super().__init__()
        self.in_chans, self.img_size, self.latent_dim, self.num_classes = in_chans, img_size, latent_dim, 0
        self.generator = Generator(latent_dim, in_chans, img_size, width)
        self.discriminator = Discriminator(in_chans, img_size, d_width or width, spectral_norm)
        for m in self.modules():  # the paper's initialisation
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return (self.generator(z) + 1) / 2


@register_model("generate")
def dcgan(num_classes: int = 10, in_chans: int = 1, img_size: int = 28, latent_dim: int = 100, width: int = 32,
          d_width: int | None = None, spectral_norm: bool = False, **kwargs) -> DCGAN:
    """DCGAN: 28x28 (7 -> 14 -> 28, 64-32 channels) or 64x64 (4 -> 64); 100-d latent; spectral norm optional."""
    size = img_size if isinstance(img_size, int) else int(img_size[0])
    if not isinstance(img_size, int) and int(img_size[0]) != int(img_size[1]):
        raise ConfigError(f"generative models need square images, got {list(img_size)}; resize with --img-size")
    return DCGAN(in_chans=in_chans, img_size=size, latent_dim=latent_dim, width=width, d_width=d_width,
                 spectral_norm=spectral_norm)


