"""Skeletons drawn over images: each person's limbs (the keypoint set's skeleton) in a colour of their own,
keypoints as dots (left side one shade, right side another, so a left/right swap shows), keypoints whose
presence is below 0.5 left out. OpenCV draws; small images are enlarged first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from dcvkit.data.keypoints import KeypointSchema
from dcvkit.viz.track import id_colour


def _draw(img: np.ndarray, keypoints: np.ndarray, schema: KeypointSchema, scale: float) -> np.ndarray:
    import cv2

    img = np.ascontiguousarray(img)
    for person, k in enumerate(np.asarray(keypoints).reshape(-1, len(schema), 3)):
        colour = id_colour(person + 1)
        on = k[:, 2] >= 0.5
        pts = [(int(round(x * scale)), int(round(y * scale))) for x, y in k[:, :2]]
        for a, b in schema.skeleton:
            if on[a] and on[b]:
                cv2.line(img, pts[a], pts[b], colour, 2, cv2.LINE_AA)
        for j, name in enumerate(schema.names):
            if on[j]:
                dot = (255, 80, 80) if name.startswith("left") else (80, 160, 255) if name.startswith("right") \
                    else (255, 255, 255)
                cv2.circle(img, pts[j], 3, dot, -1, cv2.LINE_AA)
    return img


def draw_poses(image: np.ndarray, keypoints: np.ndarray, schema: KeypointSchema, path: str | os.PathLike,
               scores: Sequence[float] | None = None, min_side: int = 384) -> Path:
    """``image`` (H, W, 3) uint8 RGB with the skeletons of ``keypoints`` (n, K, 3) drawn, saved as a PNG."""
    from dcvkit.data.annotations import write_png

    s = max(1, -(-min_side // max(1, min(image.shape[:2]))))
    big = np.repeat(np.repeat(image, s, 0), s, 1) if s > 1 else image.copy()
    path = Path(path)
    write_png(path, _draw(big, keypoints, schema, s))
    return path


def plot_pose_grid(images, keypoints: Sequence[np.ndarray], placements: Sequence, schema: KeypointSchema,
                   path: str | os.PathLike) -> Path:
    """Up to 8 (letterboxed) images with their predicted skeletons (given in original pixels), as one PNG."""
    from dcvkit.data.annotations import write_png

    tiles = []
    for img, k, p in zip(images, keypoints, placements):
        k = np.array(k, np.float64, copy=True).reshape(-1, len(schema), 3)
        k[..., 0] = k[..., 0] * p.sx + p.px
        k[..., 1] = k[..., 1] * p.sy + p.py
        a = img.permute(1, 2, 0).numpy()
        a = np.repeat(a, 3, -1) if a.shape[-1] == 1 else a
        tiles.append(_draw(np.repeat(np.repeat(a, 2, 0), 2, 1), k, schema, 2))
    if not tiles:
        raise ValueError("no images to draw")
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + 4], 1) for i in range(0, len(tiles), 4)]
    path = Path(path)
    write_png(path, np.concatenate(rows, 0))
    return path


__all__ = ["draw_poses", "plot_pose_grid"]
