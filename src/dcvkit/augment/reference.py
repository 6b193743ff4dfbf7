"""Keras' ``ImageDataGenerator.apply_transform`` for one image at a time, with numpy and scipy.ndimage, as
keras-preprocessing 1.1 implements it (``ndimage.affine_transform`` per channel, order 1).

This is the independent reference the tests compare the batched torch path against, and the per-sample
pipeline ``dcv bench augment`` measures. Its one deliberate difference from Keras: ``wrap`` uses scipy's
``grid-wrap`` (a true periodic tiling, which Keras' documentation promises) instead of scipy's legacy
``wrap``, which repeats with period n-1.
"""

from __future__ import annotations

import numpy as np

SCIPY_MODES = {"nearest": "nearest", "reflect": "reflect", "constant": "constant", "wrap": "grid-wrap"}


def keras_matrix(theta: float, tx: float, ty: float, shear: float, zx: float, zy: float,
                 h: int, w: int) -> np.ndarray:
    """Keras' 3x3 output->input matrix in (row, col) coordinates, about the image centre."""
    t, s = np.deg2rad(theta), np.deg2rad(shear)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shear_m = np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    m = rotation @ shift @ shear_m @ zoom
    o_x, o_y = h / 2 - 0.5, w / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ m @ reset


def apply_transform(x: np.ndarray, p: dict[str, float], fill_mode: str = "nearest", cval: float = 0.0,
                    order: int = 1) -> np.ndarray:
    """One image ``x`` (C, H, W) float, parameters as Keras' ``get_random_transform`` returns them
    (theta, tx, ty, shear, zx, zy, flip_horizontal, flip_vertical, channel_shift_intensity, brightness)."""
    from scipy import ndimage

    c, h, w = x.shape
    m = keras_matrix(p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0), p.get("zx", 1),
                     p.get("zy", 1), h, w)
    x = np.stack([ndimage.affine_transform(ch, m[:2, :2], m[:2, 2], order=order, mode=SCIPY_MODES[fill_mode],
                                           cval=cval) for ch in x])
    if p.get("channel_shift_intensity") is not None:
        lo, hi = x.min(), x.max()
        x = np.stack([np.clip(ch + p["channel_shift_intensity"], lo, hi) for ch in x])
    if p.get("flip_horizontal"):
        x = x[:, :, ::-1]
    if p.get("flip_vertical"):
        x = x[:, ::-1, :]
    if p.get("brightness") is not None:
        x = np.clip(x * p["brightness"], 0, 255)
    return np.ascontiguousarray(x)


def params_of(params, i: int) -> dict[str, float]:
    """Image ``i``'s draws from an :class:`~dcvkit.augment.config.AugmentParams` in Keras' names."""
    d = {"theta": float(params.theta[i]), "tx": float(params.tx[i]), "ty": float(params.ty[i]),
         "shear": float(params.shear[i]), "zx": float(params.zx[i]), "zy": float(params.zy[i]),
         "flip_horizontal": bool(params.hflip[i]), "flip_vertical": bool(params.vflip[i])}
    if params.channel_shift is not None:
        d["channel_shift_intensity"] = float(params.channel_shift[i])
    if params.brightness is not None:
        d["brightness"] = float(params.brightness[i])
    return d
