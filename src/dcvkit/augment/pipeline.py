"""The augmentation pipeline: Keras' ``ImageDataGenerator`` (random transform, then standardize) on whole
batches, with masks and boxes carried along.

    aug = Augmenter(AugmentConfig(rotation_range=15, width_shift_range=0.1, horizontal_flip=True), seed=0)
    aug.fit(train_images)                      # only needed for featurewise_* and zca_whitening
    out = aug(images, masks=masks, boxes=boxes)  # out.images: float (B, C, H, W), standardized
    x = aug.augment(images).images              # the random part only, in pixel units (0-255)

Order of the steps (Keras' ``apply_transform`` then ``standardize``, with torchvision's ops around it):
resize -> one warp per batch (random crop + rotation/shift/shear/zoom + flips) -> channel shift ->
brightness -> colour jitter -> random erasing / cutout -> standardize (rescale, samplewise, featurewise,
ZCA, or torchvision's normalize).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from dcvkit.augment import functional as AF
from dcvkit.augment.config import AugmentConfig, AugmentParams, _pair, sample_params
from dcvkit.errors import ConfigError

CPU_CHUNK_VALUES = 2 ** 19  # values per chunk on CPU: fits the caches (measured best at 28 to 224 px)
ZCA_MAX_FEATURES = 4096  # a D x D whitening matrix; 4096 values per image is 64 MB in float32


@dataclass
class Augmented:
    """One augmented batch: images (B, C, h, w) float; masks (B, h, w) and boxes (one (n_i, 4) tensor per
    image, x1 y1 x2 y2) when given, with ``box_index[i]``: which of image i's boxes were kept."""

    images: Tensor
    params: AugmentParams
    masks: Tensor | None = None
    boxes: list[Tensor] | None = None
    box_index: list[Tensor] | None = None


@dataclass
class Augmenter:
    """Random augmentation and standardization of uint8 or float batches, on their own device."""

    cfg: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    mean: Tensor | None = None                  # (C,) featurewise statistics, from fit()
    std: Tensor | None = None
    principal_components: Tensor | None = None  # (D, D) ZCA matrix, from fit()

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the random draws (the training loop reseeds per epoch, so a resumed run repeats them)."""
        self.generator.manual_seed(seed)

    # --- sizes --------------------------------------------------------------------------------------
    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of what :meth:`augment` returns for inputs of ``size``."""
        if self.cfg.resize is not None:
            size = _pair(self.cfg.resize, "resize")
        if self.cfg.random_crop is not None:
            size = _pair(self.cfg.random_crop, "random_crop")
        return size

    # --- the random part ------------------------------------------------------------------------------
    def sample(self, n: int, size: tuple[int, int]) -> AugmentParams:
        """Random parameters for ``n`` images of ``size`` (after resizing), from this augmenter's generator."""
        return sample_params(self.cfg, n, size, self.generator)

    def matrices(self, p: AugmentParams, size: tuple[int, int]) -> Tensor:
        """(B, 3, 3) output->input matrices: the crop, then Keras' warp and flips."""
        m = AF.keras_matrices(p, size)
        if p.crop is not None:
            m = m @ AF.crop_matrices(p.crop, self.cfg.crop_padding)
        return m

    def augment(self, images: Tensor, masks: Tensor | None = None, boxes: Sequence[Tensor] | None = None,
                params: AugmentParams | None = None) -> Augmented:
        """The random transforms of ``images`` (B, C, H, W), uint8 or float in pixel units, -> float.

        ``masks`` (B, H, W) integer label maps and ``boxes`` (per image (n_i, 4) x1 y1 x2 y2 in pixels)
        follow every geometric step. ``params`` fixes the draws (tests, previews); else they are sampled.
        """
        if images.ndim == 5:  # clips (B, T, C, H, W): one transform per clip, the same for all its frames
            if self.cfg.color_jitter is not None:
                raise ConfigError("augment: color_jitter works on images, not clips")
            b, t = images.shape[:2]
            out = self.augment(images.flatten(1, 2), masks, boxes, params)
            out.images = out.images.unflatten(1, (t, -1))
            return out
        if images.ndim != 4:
            raise ConfigError(f"augment: images must be (B, C, H, W) or clips (B, T, C, H, W); got shape "
                              f"{tuple(images.shape)}")
        cfg = self.cfg
        x = images
        size = tuple(x.shape[-2:])
        box_list = [b for b in boxes] if boxes is not None else None
        if cfg.resize is not None:
            new = _pair(cfg.resize, "resize")
            x = AF.resize(x.float(), new)
            if masks is not None:
                masks = torch.nn.functional.interpolate(masks[:, None].float(), size=new, mode="nearest")[:, 0] \
                    .to(masks.dtype)
            if box_list is not None:
                box_list = AF.scale_boxes(box_list, size, new)
            size = new
        p = params if params is not None else self.sample(len(x), size)
        n = len(x)
        step = n if x.device.type != "cpu" else max(1, CPU_CHUNK_VALUES // max(1, x[0].numel()))
        if step >= n:
            return self._augment(x, masks, box_list, p, size)
        # On CPU, the whole chain (warp, intensity ops) runs on a few images at a time, so they stay in the
        # cache: measured 3x faster at 224x224 than one pass over the batch per op (dcv bench augment).
        parts = [self._augment(x[i:i + step], None if masks is None else masks[i:i + step],
                               None if box_list is None else box_list[i:i + step], p.slice(i, i + step), size)
                 for i in range(0, n, step)]
        return Augmented(torch.cat([a.images for a in parts]), p,
                         None if masks is None else torch.cat([a.masks for a in parts]),
                         None if box_list is None else [b for a in parts for b in a.boxes],
                         None if box_list is None else [k for a in parts for k in a.box_index])

    def _augment(self, x: Tensor, masks: Tensor | None, box_list: list[Tensor] | None, p: AugmentParams,
                 size: tuple[int, int]) -> Augmented:
        cfg = self.cfg
        out_size = self.output_size(size)
        index = None
        if cfg.geometric:
            m = self.matrices(p, size)
            x = AF.warp(x.float(), m, out_size, cfg.fill_mode, cfg.cval, cfg.interpolation_order)
            if masks is not None:
                masks = AF.warp_masks(masks, m, out_size, cfg.fill_mode, fill=0)
            if box_list is not None:
                box_list, index = AF.warp_boxes(box_list, m, out_size)
        else:
            x = x.float()
            if bool(p.hflip.any() or p.vflip.any()):
                x = AF.flip(x, p.hflip, p.vflip)
                if masks is not None:
                    masks = AF.flip(masks, p.hflip, p.vflip)
                if box_list is not None:
                    box_list = AF.flip_boxes(box_list, p.hflip, p.vflip, size)
        if box_list is not None and index is None:
            index = [torch.arange(len(b)) for b in box_list]
        if p.channel_shift is not None:
            x = AF.channel_shift(x, p.channel_shift)
        if p.brightness is not None:
            x = AF.brightness(x, p.brightness)
        if p.jitter is not None:
            x = AF.color_jitter(x, p.jitter)
        if p.erase is not None:
            x = AF.erase(x, p.erase, cfg.erase_value)
        return Augmented(x, p, masks, box_list, index)

    # --- standardization (training, evaluation and prediction alike) -----------------------------------
    def _pre_fit(self, x: Tensor) -> Tensor:
        # Keras' fit() skips rescale and the samplewise steps (a long-standing gotcha that leaves featurewise
        # statistics in the wrong units); we apply them, so the statistics describe what standardize() sees.
        c = self.cfg
        if c.rescale is not None:
            x = x * c.rescale
        if c.samplewise_center:
            x = x - x.mean(dim=(1, 2, 3), keepdim=True)
        if c.samplewise_std_normalization:
            x = x / (x.std(dim=(1, 2, 3), keepdim=True, correction=0) + 1e-6)
        return x

    def fit(self, images: Tensor) -> "Augmenter":
        """Featurewise mean/std and the ZCA matrix from training images (N, C, H, W), as Keras' ``fit()``."""
        c = self.cfg
        if not c.needs_fit:
            return self
        d = images[0].numel()
        if c.zca_whitening and d > ZCA_MAX_FEATURES:
            raise ConfigError(f"augment: zca_whitening on {tuple(images.shape[1:])} images needs a {d}x{d} "
                              f"matrix; use at most {ZCA_MAX_FEATURES} values per image (e.g. --img-size 32 "
                              "with 3 channels)")
        x = self._pre_fit(images.double())
        if c.featurewise_center:
            self.mean = x.mean(dim=(0, 2, 3))
            x = x - self.mean.view(1, -1, 1, 1)
        if c.featurewise_std_normalization:
            self.std = x.std(dim=(0, 2, 3), correction=0)
            x = x / (self.std.view(1, -1, 1, 1) + 1e-6)
        if c.zca_whitening:
            flat = x.reshape(len(x), -1)
            sigma = flat.T @ flat / len(flat)
            u, s, _ = torch.linalg.svd(sigma)
            self.principal_components = ((u * (1.0 / torch.sqrt(s + c.zca_epsilon))) @ u.T).float()
        self.mean = None if self.mean is None else self.mean.float()
        self.std = None if self.std is None else self.std.float()
        return self

    def standardize(self, x: Tensor) -> Tensor:
        """Keras' ``standardize()`` (or torchvision's Normalize) of float images in pixel units."""
        c = self.cfg
        x = self._pre_fit(x.float())
        if c.needs_fit and ((c.featurewise_center and self.mean is None)
                            or (c.zca_whitening and self.principal_components is None)):
            raise ConfigError("augment: featurewise statistics / ZCA are not fitted; call fit() on training "
                              "images first")
        if c.featurewise_center:
            x = x - self.mean.to(x.device).view(1, -1, 1, 1)
        if c.featurewise_std_normalization:
            x = x / (self.std.to(x.device).view(1, -1, 1, 1) + 1e-6)
        if c.zca_whitening:
            x = (x.flatten(1) @ self.principal_components.to(x.device)).view_as(x)
        if c.normalize is not None:
            mean = torch.tensor(c.normalize[0], device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            std = torch.tensor(c.normalize[1], device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
            x = (x / 255.0 - mean) / std
        return x

    def __call__(self, images: Tensor, masks: Tensor | None = None, boxes: Sequence[Tensor] | None = None,
                 params: AugmentParams | None = None) -> Augmented:
        """What Keras' ``flow()`` yields: the random transform, then standardize."""
        out = self.augment(images, masks, boxes, params)
        out.images = self.standardize(out.images)
        return out

    # --- saving -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The config and fitted statistics (tensors), for a checkpoint's meta (weights_only-safe)."""
        return {"config": self.cfg.changed(),
                **{k: getattr(self, k) for k in ("mean", "std", "principal_components") if getattr(self, k) is not None}}

    @classmethod
    def from_state(cls, state: dict[str, Any], seed: int = 0) -> "Augmenter":
        from dcvkit.augment.config import augment_from_dict

        aug = cls(augment_from_dict(state.get("config", {}), where="checkpoint augment config"), seed)
        for k in ("mean", "std", "principal_components"):
            if k in state:
                setattr(aug, k, state[k])
        return aug
