"""What an augmentation pipeline does: Keras ``ImageDataGenerator``'s arguments with the same meaning, plus the
torchvision-style ops the course shows (resize, random crop, colour jitter, normalize, random erasing/cutout).

A config comes from a YAML file (``--augment aug.yaml``), from inline options
(``--augment "rotation_range=10, horizontal_flip=true"``) or from Python (``AugmentConfig(rotation_range=10)``).
Values are in the images' own pixel units, 0-255 for 8-bit images, as in Keras: ``channel_shift_range: 20``
and ``cval: 128`` mean what they mean there.

:func:`sample_params` draws the random parameters per image, exactly as Keras' ``get_random_transform``
does (same distributions, same int/float/list rules), but for a whole batch at once.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from torch import Tensor

from dcvkit.config import _unknown_key, load_yaml, opt, safe_yaml
from dcvkit.errors import ConfigError

Range = float | int | list  # Keras' "float, int or 1-D array-like" ranges, kept as given (int and float differ)

FILL_MODES = ("nearest", "reflect", "wrap", "constant")


@dataclass
class AugmentConfig:
    """Augmentation: Keras ImageDataGenerator's arguments (same meaning), plus torchvision-style ops."""

    # --- ImageDataGenerator: random geometry ---
    rotation_range: float = opt(0.0, "random rotation, uniform in [-r, r] degrees")
    width_shift_range: Range = opt(0.0, "horizontal shift: a float f is uniform in [-f, f), a fraction of the width "
                                        "when f < 1, else pixels; an int n is a whole number of pixels in (-n, n); "
                                        "a list is one of its values with a random sign (fractions if all < 1)")
    height_shift_range: Range = opt(0.0, "vertical shift, the same rules as width_shift_range")
    shear_range: float = opt(0.0, "shear angle, uniform in [-s, s] degrees (counter-clockwise)")
    zoom_range: Range = opt(0.0, "zoom z -> [1-z, 1+z], or [lower, upper]; x and y drawn independently; as in "
                                 "Keras a factor > 1 samples a larger area, so the object looks smaller")
    horizontal_flip: bool = opt(False, "flip left-right with probability 1/2")
    vertical_flip: bool = opt(False, "flip upside-down with probability 1/2")
    fill_mode: str = opt("nearest", "points outside the image: nearest (aaaa|abcd|dddd), reflect (dcba|abcd|dcba), "
                                    "wrap (abcd|abcd|abcd) or constant (cval)", FILL_MODES)
    cval: float = opt(0.0, "value outside the image for fill_mode constant (pixel units)")
    interpolation_order: int = opt(1, "1: bilinear, 0: nearest neighbour (as scipy's order)")
    # --- ImageDataGenerator: random intensity ---
    brightness_range: list | None = opt(None, "[lower, upper]: multiply the pixels by a uniform factor, clipped to "
                                              "[0, 255] like PIL's ImageEnhance.Brightness")
    channel_shift_range: float = opt(0.0, "add one uniform shift in [-c, c] to every channel, clipped to the "
                                          "image's own min and max (pixel units)")
    # --- ImageDataGenerator: standardization (also applied at evaluation and prediction) ---
    rescale: float | None = opt(None, "multiply the pixels by this (e.g. 0.00392 = 1/255) before the rest")
    samplewise_center: bool = opt(False, "subtract each image's mean")
    samplewise_std_normalization: bool = opt(False, "divide each image by its std (+1e-6)")
    featurewise_center: bool = opt(False, "subtract the per-channel mean of the training data (from fit())")
    featurewise_std_normalization: bool = opt(False, "divide by the per-channel std of the training data (+1e-6)")
    zca_whitening: bool = opt(False, "ZCA whitening fitted on the training data (at most 4096 values per image)")
    zca_epsilon: float = opt(1e-6, "epsilon added to the eigenvalues for ZCA whitening")
    validation_split: float | None = opt(None, "fraction of the training images held out for validation "
                                               "(the same as --val-split)")
    # --- torchvision-style ops ---
    resize: list | None = opt(None, "[height, width] (or one number): resize every image first (antialiased)")
    random_crop: list | None = opt(None, "[height, width] (or one number): crop at a random position "
                                         "(after padding by crop_padding)")
    crop_padding: int = opt(0, "pad by this many pixels (with fill_mode) before the random crop, as for CIFAR")
    color_jitter: list | None = opt(None, "[brightness, contrast, saturation, hue] as torchvision's ColorJitter "
                                          "(factors uniform in [1-b, 1+b]; hue in [-h, h], h <= 0.5)")
    normalize: list | None = opt(None, "[[mean...], [std...]] in [0, 1] units, as torchvision's Normalize after "
                                       "ToTensor (replaces the dataset statistics)")
    random_erasing: float = opt(0.0, "probability of erasing a random rectangle (torchvision's RandomErasing: "
                                     "2 to 33 percent of the area, aspect 0.3 to 3.3)")
    cutout: int = opt(0, "cutout: erase a square of this many pixels at a random centre in every image (0: off)")
    erase_value: float = opt(0.0, "value of erased pixels (pixel units)")

    def __post_init__(self) -> None:
        # Keras turns these on itself (with a warning) because the others assume centred data.
        if self.featurewise_std_normalization or self.zca_whitening:
            self.featurewise_center = True
        if self.samplewise_std_normalization:
            self.samplewise_center = True
        check(self)

    # ---- derived facts ----
    @property
    def zoom(self) -> tuple[float, float]:
        z = self.zoom_range
        if isinstance(z, list):
            return float(z[0]), float(z[1])
        return 1.0 - float(z), 1.0 + float(z)

    @property
    def geometric(self) -> bool:
        """Whether a random affine warp is needed (flips alone are cheaper as flips)."""
        return bool(self.rotation_range or _nonzero(self.width_shift_range) or _nonzero(self.height_shift_range)
                    or self.shear_range or self.zoom != (1.0, 1.0) or self.crop_padding or self.random_crop)

    @property
    def standardizes(self) -> bool:
        """Whether this config replaces the dataset's mean/std normalisation with its own."""
        return bool(self.rescale is not None or self.samplewise_center or self.samplewise_std_normalization
                    or self.featurewise_center or self.featurewise_std_normalization or self.zca_whitening
                    or self.normalize)

    @property
    def needs_fit(self) -> bool:
        return self.featurewise_center or self.featurewise_std_normalization or self.zca_whitening

    @property
    def random(self) -> bool:
        """Whether anything random happens (else training sees the standardized images unchanged)."""
        return bool(self.geometric or self.horizontal_flip or self.vertical_flip or self.brightness_range
                    or self.channel_shift_range or self.color_jitter or self.random_erasing or self.cutout)

    def changed(self) -> dict[str, Any]:
        """The options that differ from the defaults (what a saved config needs)."""
        default = AugmentConfig()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def inline(self) -> str:
        """The changed options as one inline string that :func:`parse_augment` reads back."""
        return ", ".join(f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                         for k, v in self.changed().items())


def _nonzero(r: Range) -> bool:
    return any(float(v) != 0 for v in r) if isinstance(r, list) else float(r) != 0


def _pair(v: list | float | int, name: str) -> tuple[int, int]:
    vals = v if isinstance(v, list) else [v]
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or any(int(x) != x or x < 1 for x in vals):
        raise ConfigError(f"augment: '{name}' must be a size in pixels or [height, width]; got {v!r}")
    return int(vals[0]), int(vals[1])


def check(cfg: AugmentConfig) -> None:
    """Validate values (types come from :func:`parse_augment`); one-line errors naming the option."""
    def bad(name: str, what: str) -> ConfigError:
        return ConfigError(f"augment: '{name}' {what}; got {getattr(cfg, name)!r}")

    for name in ("width_shift_range", "height_shift_range"):
        r = getattr(cfg, name)
        if isinstance(r, list) and not r:
            raise bad(name, "must not be an empty list")
    if isinstance(cfg.zoom_range, list) and len(cfg.zoom_range) != 2:
        raise bad("zoom_range", "must be a float or [lower, upper]")
    lo, hi = cfg.zoom
    if not 0 < lo <= hi:
        raise bad("zoom_range", "must give 0 < lower <= upper (a float must be < 1)")
    if cfg.brightness_range is not None and (len(cfg.brightness_range) != 2 or not
                                             0 <= cfg.brightness_range[0] <= cfg.brightness_range[1]):
        raise bad("brightness_range", "must be [lower, upper] with 0 <= lower <= upper")
    if cfg.interpolation_order not in (0, 1):
        raise bad("interpolation_order", "must be 0 (nearest) or 1 (bilinear)")
    if cfg.color_jitter is not None:
        if len(cfg.color_jitter) != 4 or any(v < 0 for v in cfg.color_jitter) or cfg.color_jitter[3] > 0.5:
            raise bad("color_jitter", "must be [brightness, contrast, saturation, hue], all >= 0, hue <= 0.5")
    if cfg.normalize is not None:
        if (len(cfg.normalize) != 2 or not all(isinstance(v, list) for v in cfg.normalize)
                or len(cfg.normalize[0]) != len(cfg.normalize[1]) or any(s <= 0 for s in cfg.normalize[1])):
            raise bad("normalize", "must be [[mean per channel], [std per channel]] with std > 0")
    if not 0 <= cfg.random_erasing <= 1:
        raise bad("random_erasing", "must be a probability in [0, 1]")
    if cfg.validation_split is not None and not 0 <= cfg.validation_split < 1:
        raise bad("validation_split", "must be in [0, 1)")
    if cfg.resize is not None:
        _pair(cfg.resize, "resize")
    if cfg.random_crop is not None:
        _pair(cfg.random_crop, "random_crop")
    if cfg.crop_padding < 0 or cfg.cutout < 0:
        raise ConfigError("augment: 'crop_padding' and 'cutout' must be >= 0")
    if cfg.normalize is not None and (cfg.rescale is not None or cfg.featurewise_center or cfg.samplewise_center):
        raise ConfigError("augment: 'normalize' (torchvision style) replaces rescale/featurewise/samplewise "
                          "standardization; use one of the two")
    if cfg.zca_epsilon <= 0:
        raise bad("zca_epsilon", "must be > 0")


# --- reading a config ---------------------------------------------------------------------------------


def _coerce(name: str, value: Any, where: str) -> Any:
    """The field's type, keeping Keras' int/float/list distinction for the ranges."""
    f = {f.name: f for f in fields(AugmentConfig)}[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    ann = str(f.type)

    def number(v: Any) -> float | int:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}: '{name}' must be a number or a list of numbers; got {value!r}")
        return v

    if value is None and "None" in ann:
        return None
    if ann == "Range":
        if isinstance(value, list):
            return [number(v) for v in value]
        return number(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{name}' must be true or false; got {value!r}")
        return value
    if ann.startswith("list"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{name}' must be a list; got {value!r}")
        return [[number(x) for x in v] if isinstance(v, list) else number(v) for v in value]
    if name == "fill_mode":
        if value not in FILL_MODES:
            raise ConfigError(f"{where}: 'fill_mode' must be one of {', '.join(FILL_MODES)}; got {value!r}")
        return value
    if ann.startswith("int"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: '{name}' must be an integer; got {value!r}")
        return value
    return float(number(value))


def augment_from_dict(values: Mapping[str, Any], where: str = "augment") -> AugmentConfig:
    """An :class:`AugmentConfig` from a mapping, with one-line errors for unknown keys and bad values."""
    names = {f.name for f in fields(AugmentConfig)}
    kw = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key not in names:
            raise _unknown_key(AugmentConfig, key, where)
        kw[key] = _coerce(key, value, where)
    try:
        return AugmentConfig(**kw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {str(e).removeprefix('augment: ')}") from None


def parse_augment(spec: str | os.PathLike | Mapping[str, Any] | AugmentConfig | None) -> AugmentConfig | None:
    """``--augment``'s value: a YAML file, inline ``key=value, key=[a, b]`` options, a mapping, or a config."""
    if spec is None or isinstance(spec, AugmentConfig):
        return spec
    if isinstance(spec, Mapping):
        return augment_from_dict(spec)
    text = str(spec).strip()
    if not text:
        return None
    if "=" not in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--augment {text}: no such YAML file; give a file or inline options like "
                              "'rotation_range=10, horizontal_flip=true'")
        return augment_from_dict(load_yaml(path), where=str(path))
    try:  # inline: "a=1, b=[0.9, 1.1]" is the YAML flow mapping "{a: 1, b: [0.9, 1.1]}"
        values = safe_yaml("{" + text.replace("=", ": ") + "}", "--augment")
    except ConfigError:
        values = None
    if not isinstance(values, dict):
        raise ConfigError(f"--augment {text!r}: cannot read inline options; write 'key=value, key=[a, b]'")
    return augment_from_dict(values, where="--augment")


# --- random parameters, per image, for a whole batch ----------------------------------------------------


@dataclass
class AugmentParams:
    """The random draws for one batch, one entry per image (B,). Pixels and degrees as Keras names them:
    ``tx``/``zx`` act on rows (height), ``ty``/``zy`` on columns (width)."""

    theta: Tensor
    tx: Tensor
    ty: Tensor
    shear: Tensor
    zx: Tensor
    zy: Tensor
    hflip: Tensor
    vflip: Tensor
    brightness: Tensor | None = None
    channel_shift: Tensor | None = None
    jitter: Tensor | None = None          # (B, 4) brightness, contrast, saturation factors and hue shift
    crop: Tensor | None = None            # (B, 2) top-left corner of the crop in the padded image
    erase: Tensor | None = None           # (B, 4) y0, x0, h, w of the erased rectangle (h = 0: none)

    @classmethod
    def fixed(cls, n: int = 1, **values: Any) -> "AugmentParams":
        """Chosen draws for ``n`` images: the identity except for ``values`` (a number or bool for every image,
        or a sequence of one per image), e.g. ``AugmentParams.fixed(theta=90)``; for previews and tests."""
        geometry = dict(theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0)
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"AugmentParams.fixed: unknown draws {sorted(unknown)}")

        def column(v: Any, dtype: torch.dtype) -> Tensor:
            t = torch.as_tensor(v, dtype=dtype)
            return t.expand(n).clone() if t.ndim == 0 else t

        out = {k: column(values.get(k, v), torch.float64) for k, v in geometry.items()}
        out.update({k: column(values.get(k, False), torch.bool) for k in ("hflip", "vflip")})
        out.update({k: torch.as_tensor(values[k]) for k in ("brightness", "channel_shift", "jitter", "crop", "erase")
                    if k in values})
        return cls(**out)

    def slice(self, start: int, stop: int) -> "AugmentParams":
        """The draws of images ``start:stop``."""
        return AugmentParams(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[start:stop])
                                for f in fields(self)})

    def to(self, device: torch.device | str) -> "AugmentParams":
        return AugmentParams(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name).to(device))
                                for f in fields(self)})


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo


def _shift(r: Range, size: int, n: int, g: torch.Generator) -> Tensor:
    """Keras' shift rule: a list or an int -> a random element with a random sign; a float -> uniform;
    fractions (max < 1) are multiplied by the size."""
    if isinstance(r, list) or isinstance(r, int):
        values = torch.tensor(r if isinstance(r, list) else list(range(r)), dtype=torch.float64)
        pick = values[torch.randint(len(values), (n,), generator=g)]
        out = pick * (torch.randint(2, (n,), generator=g) * 2 - 1)
    else:
        out = _uniform(n, -r, r, g)
    fraction = (max(r) if isinstance(r, list) else r) < 1
    return out * size if fraction else out


def sample_params(cfg: AugmentConfig, n: int, size: tuple[int, int], g: torch.Generator) -> AugmentParams:
    """Random parameters for ``n`` images of ``size`` (H, W), drawn with ``g``."""
    h, w = size
    zero = torch.zeros(n, dtype=torch.float64)
    theta = _uniform(n, -cfg.rotation_range, cfg.rotation_range, g) if cfg.rotation_range else zero
    tx = _shift(cfg.height_shift_range, h, n, g) if _nonzero(cfg.height_shift_range) else zero
    ty = _shift(cfg.width_shift_range, w, n, g) if _nonzero(cfg.width_shift_range) else zero
    shear = _uniform(n, -cfg.shear_range, cfg.shear_range, g) if cfg.shear_range else zero
    lo, hi = cfg.zoom
    if (lo, hi) == (1.0, 1.0):
        zx = zy = torch.ones(n, dtype=torch.float64)
    else:
        zx, zy = _uniform(n, lo, hi, g), _uniform(n, lo, hi, g)
    no = torch.zeros(n, dtype=torch.bool)
    hflip = torch.rand(n, generator=g) < 0.5 if cfg.horizontal_flip else no
    vflip = torch.rand(n, generator=g) < 0.5 if cfg.vertical_flip else no
    p = AugmentParams(theta, tx, ty, shear, zx, zy, hflip, vflip)
    if cfg.brightness_range is not None:
        p.brightness = _uniform(n, *cfg.brightness_range, g).float()
    if cfg.channel_shift_range:
        p.channel_shift = _uniform(n, -cfg.channel_shift_range, cfg.channel_shift_range, g).float()
    if cfg.color_jitter is not None:
        b, c, s, hue = cfg.color_jitter
        p.jitter = torch.stack([_uniform(n, max(0.0, 1 - b), 1 + b, g), _uniform(n, max(0.0, 1 - c), 1 + c, g),
                                _uniform(n, max(0.0, 1 - s), 1 + s, g), _uniform(n, -hue, hue, g)], 1).float()
    if cfg.random_crop is not None or cfg.crop_padding:
        ch, cw = _pair(cfg.random_crop, "random_crop") if cfg.random_crop is not None else (h, w)
        ph, pw = h + 2 * cfg.crop_padding - ch, w + 2 * cfg.crop_padding - cw
        if ph < 0 or pw < 0:
            raise ConfigError(f"augment: random_crop {ch}x{cw} is larger than the (padded) image {h}x{w}")
        p.crop = torch.stack([torch.randint(ph + 1, (n,), generator=g), torch.randint(pw + 1, (n,), generator=g)], 1)
    if cfg.random_erasing or cfg.cutout:
        p.erase = _erase_boxes(cfg, n, h, w, g)
    return p


def _erase_boxes(cfg: AugmentConfig, n: int, h: int, w: int, g: torch.Generator) -> Tensor:
    """(n, 4) rectangles y0, x0, height, width. Random erasing: torchvision's area (2-33%) and log-uniform
    aspect (0.3-3.3), clamped to the image instead of torchvision's 10 retries; cutout: a fixed square
    around a uniform centre, clipped at the border (DeVries & Taylor, 2017)."""
    if cfg.cutout:
        cy, cx = torch.randint(h, (n,), generator=g), torch.randint(w, (n,), generator=g)
        half = cfg.cutout // 2
        y0, x0 = (cy - half).clamp(0, h), (cx - half).clamp(0, w)
        y1, x1 = (cy - half + cfg.cutout).clamp(0, h), (cx - half + cfg.cutout).clamp(0, w)
        return torch.stack([y0, x0, y1 - y0, x1 - x0], 1)
    area = _uniform(n, 0.02, 0.33, g) * h * w
    ratio = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), g))
    eh = (area * ratio).sqrt().round().clamp(1, h).long()
    ew = (area / ratio).sqrt().round().clamp(1, w).long()
    y0 = (torch.rand(n, generator=g, dtype=torch.float64) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=g, dtype=torch.float64) * (w - ew + 1)).long()
    on = torch.rand(n, generator=g) < cfg.random_erasing
    return torch.stack([y0, x0, eh * on, ew * on], 1)
