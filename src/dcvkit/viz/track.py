"""Tracks drawn on video frames: a box and "id class" label per track, in a colour of its own id, and a short
trail of the box centre's last positions. Frames smaller than 384 pixels are enlarged (nearest neighbour) so
that labels stay readable; OpenCV draws (fast enough to keep up with the tracker)."""

from __future__ import annotations

import colorsys
from collections import deque
from typing import Sequence

import numpy as np


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread RGB colour for a track id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


class TrackDrawer:
    """``drawer.draw(frame, tracks)`` -> the annotated frame (H * s, W * s, 3) uint8 RGB; keeps each id's trail
    of the last ``trail`` centres across calls."""

    def __init__(self, classes: Sequence[str], trail: int = 20, min_side: int = 384):
        self.classes, self.trail, self.min_side = list(classes), trail, min_side
        self.history: dict[int, deque] = {}

    def draw(self, frame: np.ndarray, tracks) -> np.ndarray:
        import cv2

        s = max(1, -(-self.min_side // max(1, min(frame.shape[:2]))))
        img = np.ascontiguousarray(np.repeat(np.repeat(frame, s, 0), s, 1) if s > 1 else frame.copy())
        seen = set()
        for i, b, c in zip(tracks.ids.tolist(), np.asarray(tracks.boxes, float).tolist(), tracks.labels.tolist()):
            seen.add(i)
            colour = id_colour(i)
            x1, y1, x2, y2 = (int(round(v * s)) for v in b)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            if self.trail:
                h = self.history.setdefault(i, deque(maxlen=self.trail))
                h.append(((x1 + x2) // 2, (y1 + y2) // 2))
                if len(h) > 1:
                    cv2.polylines(img, [np.array(h, np.int32).reshape(-1, 1, 2)], False, colour, 2)
            name = self.classes[c] if 0 <= c < len(self.classes) else str(c)
            text = f"{i} {name}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            ty = max(y1, th + 4)
            tx = min(max(x1, 0), max(0, img.shape[1] - tw - 4))  # the label stays in the frame
            cv2.rectangle(img, (tx, ty - th - 4), (tx + tw + 4, ty), colour, -1)
            cv2.putText(img, text, (tx + 2, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0) if sum(colour) > 400 else (255, 255, 255), 1, cv2.LINE_AA)
        for i in [k for k in self.history if k not in seen]:  # a track not shown this frame loses its trail
            del self.history[i]
        return img


__all__ = ["TrackDrawer", "id_colour"]
