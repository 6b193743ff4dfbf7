"""Pictures of 3-D detection: the bird's-eye view (points from above, coloured by height, boxes with their
heading) and the camera image with the 3-D boxes projected onto it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcvkit.data.calib import Calibration, box_corners
from dcvkit.data.kitti import Labels

#: per class (RGB 0..1): ground truth is drawn dashed in the class colour, detections solid
COLOURS = {"Car": (0.9, 0.2, 0.2), "Pedestrian": (0.2, 0.45, 0.95), "Cyclist": (0.2, 0.75, 0.3)}


def draw_bev(points: np.ndarray, truth: Labels | None, dets: Labels | None, path: str | Path, title: str = "",
             extent: tuple[float, float, float, float] = (0, 50, -25, 25)) -> Path:
    """Points from above (x forward up the picture, y left), true boxes dashed, detections solid with a line
    to their front and their score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dcvkit.viz.plots import save_figure

    x0, x1, y0, y1 = extent
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    p = points[(points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)]
    ax.scatter(-p[:, 1], p[:, 0], s=0.3, c=p[:, 2], cmap="viridis", vmin=-2, vmax=1, linewidths=0)
    for lab, style in ((truth, "--"), (dets, "-")):
        if lab is None:
            continue
        for i, name in enumerate(lab.names):
            c = box_corners(lab.boxes[i:i + 1])[0, :4]
            ring = np.vstack([c, c[:1]])
            colour = COLOURS.get(name, (0.5, 0.5, 0.5))
            ax.plot(-ring[:, 1], ring[:, 0], style, color=colour, lw=1.2)
            if style == "-":
                front = c[[0, 3]].mean(0)
                ctr = lab.boxes[i, :2]
                ax.plot([-ctr[1], -front[1]], [ctr[0], front[0]], "-", color=colour, lw=1.2)
                if lab.scores is not None:
                    ax.text(-c[:, 1].min(), c[:, 0].max(), f"{lab.scores[i]:.2f}", color=colour, fontsize=6)
    ax.set_xlim(-y1, -y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.set_xlabel("y (m, left <-)")
    ax.set_ylabel("x (m, forward)")
    ax.set_title(f"{title}  dashed: truth, solid: detections" if title else "dashed: truth, solid: detections",
                 fontsize=9)
    save_figure(fig, path)
    return Path(path)


def draw_camera(image: np.ndarray, calib: Calibration, truth: Labels | None, dets: Labels | None,
                path: str | Path) -> Path:
    """The camera image with each box's 12 edges projected (truth thin and white, detections in their class
    colour with the score); boxes behind the camera are left out."""
    import cv2

    from dcvkit.data.annotations import write_png

    img = np.ascontiguousarray(image.copy())
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    for lab, width in ((truth, 1), (dets, 2)):
        if lab is None:
            continue
        for i, name in enumerate(lab.names):
            uv, depth = calib.lidar_to_image(box_corners(lab.boxes[i:i + 1])[0])
            if (depth <= 0.1).any():
                continue
            colour = (255, 255, 255) if width == 1 else tuple(int(255 * v) for v in COLOURS.get(name, (0.5,) * 3))
            q = np.round(uv).astype(int)
            for a, b in edges:
                cv2.line(img, tuple(map(int, q[a])), tuple(map(int, q[b])), colour, width, cv2.LINE_AA)
            if width == 2 and lab.scores is not None:
                cv2.putText(img, f"{name} {lab.scores[i]:.2f}", (int(q[:, 0].min()), max(10, int(q[:, 1].min()) - 3)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    path = Path(path)
    write_png(path, img)
    return path


def draw_points(points: np.ndarray, path: str | Path, title: str = "") -> Path:
    """A point cloud from above and from the side (a smoke test of any cloud, e.g. one from a stereo pair)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dcvkit.viz.plots import save_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 5))
    colour = points[:, 3] if points.shape[1] > 3 else points[:, 2]
    a.scatter(-points[:, 1], points[:, 0], s=0.2, c=colour, cmap="gray", linewidths=0)
    a.set_aspect("equal")
    a.set_xlabel("y (m, left <-)")
    a.set_ylabel("x (m, forward)")
    a.set_title("from above")
    b.scatter(points[:, 0], points[:, 2], s=0.2, c=colour, cmap="gray", linewidths=0)
    b.set_aspect("equal")
    b.set_xlabel("x (m, forward)")
    b.set_ylabel("z (m, up)")
    b.set_title("from the side")
    fig.suptitle(title)
    save_figure(fig, path)
    return Path(path)


__all__ = ["draw_bev", "draw_camera", "draw_points"]
