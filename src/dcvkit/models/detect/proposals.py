"""Where to look: region proposals, the input of the brute-force, R-CNN and Fast R-CNN detectors.

Two implementations of one interface (``propose(image uint8 (3, H, W)) -> boxes (P, 4)`` x1 y1 x2 y2 pixel
edges, best first):

* :class:`SlidingWindows` - every window of a pyramid of sizes and aspect ratios at a fixed stride; the
  same boxes for every image of a size (brute force).
* :class:`SelectiveSearch` - Uijlings et al.'s hierarchical grouping of an over-segmentation by colour,
  texture, size and fill similarity, through OpenCV-contrib's ``ximgproc`` (``fast`` or ``quality`` mode,
  capped at ``max_proposals``). A 128x128 FashionScene takes ~70 ms (fast) on one core, so
  :func:`propose_all` spreads images over processes and caches the result per image set.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.choices import PROPOSAL_METHODS
from dcvkit.errors import ConfigError, DataError

METHODS = PROPOSAL_METHODS


class Proposer(Protocol):
    def __call__(self, image: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of side ``sqrt(area)`` for each size in ``sizes`` and width/height ``ratios``, every ``stride``
    pixels, each pyramid level covering the image from its top-left corner."""

    sizes: tuple[int, ...] = (32, 44)
    ratios: tuple[float, ...] = (0.6, 1.0, 1.6)
    stride: int = 6

    def boxes(self, height: int, width: int) -> Tensor:
        out = []
        for s in self.sizes:
            for r in self.ratios:
                w, h = s * r**0.5, s / r**0.5
                if w > width or h > height:
                    continue
                xs = torch.arange(0, width - w + 1e-6, self.stride, dtype=torch.float32)
                ys = torch.arange(0, height - h + 1e-6, self.stride, dtype=torch.float32)
                gy, gx = torch.meshgrid(ys, xs, indexing="ij")
                out.append(torch.stack([gx, gy, gx + w, gy + h], -1).reshape(-1, 4))
        if not out:
            raise ConfigError(f"sliding windows {self.sizes} do not fit a {width}x{height} image")
        return torch.cat(out)

    def __call__(self, image: Tensor) -> Tensor:
        return self.boxes(image.shape[-2], image.shape[-1])


@dataclass(frozen=True)
class SelectiveSearch:
    """Selective search (OpenCV-contrib ``ximgproc``); ``mode`` ``fast`` or ``quality``; boxes smaller than
    ``min_size`` pixels are dropped; at most ``max_proposals`` are kept (in OpenCV's ranking order)."""

    mode: str = "fast"
    max_proposals: int = 2000
    min_size: int = 8

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "quality", "single"):
            raise ConfigError(f"selective search mode '{self.mode}': choose fast or quality")

    def __call__(self, image: Tensor) -> Tensor:
        return selective_search(image, self.mode, self.max_proposals, self.min_size)


def _cv2():
    try:
        import cv2

        cv2.ximgproc.segmentation  # noqa: B018 - only in the contrib build
    except (ImportError, AttributeError):
        raise ConfigError("selective search needs opencv-contrib-python-headless (pip install "
                          "opencv-contrib-python-headless; the plain opencv-python has no ximgproc)") from None
    return cv2


def _seed_c_rand(seed: int) -> None:
    """OpenCV ranks selective-search regions by hierarchy level times C's ``rand()`` (the paper's
    pseudo-random ranking), so the order, and which boxes a cap keeps, changes from call to call. Seeding
    ``rand()`` makes the proposals of an image reproducible."""
    import ctypes

    try:
        ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    except (OSError, AttributeError, TypeError):  # no C library handle on this platform: order stays random
        pass


def selective_search(image: Tensor, mode: str = "fast", max_proposals: int = 2000, min_size: int = 8,
                     seed: int = 0) -> Tensor:
    """Selective-search boxes (P, 4) for one uint8 image (3, H, W) (or (1, H, W): replicated to RGB), in
    OpenCV's ranking order, reproducible for a given ``seed``."""
    cv2 = _cv2()
    cv2.setNumThreads(1)
    arr = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    bgr = np.ascontiguousarray(arr.permute(1, 2, 0).numpy()[:, :, ::-1])
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(bgr)
    {"fast": ss.switchToSelectiveSearchFast, "quality": ss.switchToSelectiveSearchQuality,
     "single": ss.switchToSingleStrategy}[mode]()
    _seed_c_rand(seed)
    rects = ss.process()
    if len(rects) == 0:
        return torch.zeros(0, 4)
    r = torch.as_tensor(np.asarray(rects), dtype=torch.float32)
    boxes = torch.cat([r[:, :2], r[:, :2] + r[:, 2:]], 1)
    keep = (r[:, 2] >= min_size) & (r[:, 3] >= min_size)
    return boxes[keep][:max_proposals]


def build_proposer(method: str, mode: str = "fast", max_proposals: int = 2000,
                   windows: SlidingWindows | None = None) -> Proposer:
    if method == "selective_search":
        return SelectiveSearch(mode, max_proposals)
    if method == "sliding_window":
        return windows or SlidingWindows()
    raise ConfigError(f"unknown proposal method '{method}'; choose {', '.join(METHODS)}")


# --- many images: processes and a cache ----------------------------------------------------------------


def _worker_init() -> None:
    torch.set_num_threads(1)  # one image per process: the processes are the parallelism


def _timed(args: tuple[Proposer, np.ndarray]) -> tuple[np.ndarray, float]:
    proposer, arr = args
    t0 = time.perf_counter()
    boxes = proposer(torch.from_numpy(arr))
    return boxes.numpy(), time.perf_counter() - t0


def cache_dir() -> Path:
    return Path(os.environ.get("DCV_CACHE") or Path.home() / ".cache" / "dcvkit") / "proposals"


CACHE_VERSION = 2  # bump when the proposals of the same settings change (2: seeded selective-search ranking)


def _key(images: Tensor, proposer: Proposer) -> str:
    h = hashlib.sha1(f"{CACHE_VERSION}:{proposer!r}".encode())
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


@dataclass
class ProposalSet:
    """Proposals of many images with the seconds each image took (on one core)."""

    boxes: list[Tensor]
    seconds: list[float]

    @property
    def seconds_per_image(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else 0.0


def propose_all(images: Tensor | Sequence[Tensor], proposer: Proposer, workers: int | None = None,
                cache: bool = True, progress: bool = False, desc: str = "proposals") -> ProposalSet:
    """Proposals for every image (uint8 (N, 3, H, W) or a list of (3, H, W)), computed in ``workers``
    processes (default: all cores) and cached under ``$DCV_CACHE/proposals`` (default ``~/.cache/dcvkit``)
    keyed by the pixels and the proposer's settings. Sliding windows are computed directly."""
    if isinstance(proposer, SlidingWindows):
        boxes = [proposer(im) for im in images]
        return ProposalSet(boxes, [0.0] * len(boxes))
    stacked = images if isinstance(images, Tensor) else None
    path = cache_dir() / f"{_key(stacked, proposer)}.pt" if cache and stacked is not None else None
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            return ProposalSet(list(saved["boxes"]), list(saved["seconds"]))
        except Exception:  # a damaged cache entry is recomputed, never trusted
            pass
    arrays = [im.contiguous().numpy() for im in images]
    workers = workers or min(len(arrays), os.cpu_count() or 1)
    jobs = [(proposer, a) for a in arrays]
    from dcvkit.progress import track

    def collect(it: Iterable[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
        return list(track(it, total=len(jobs), description=desc) if progress else it)

    if workers <= 1 or len(arrays) < 8:
        results = collect(map(_timed, jobs))
    else:
        import multiprocessing as mp

        # fork, as DataLoader workers on Linux: spawn would re-run an unguarded user script in every worker
        with mp.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
            results = collect(pool.imap(_timed, jobs, chunksize=16))
    out = ProposalSet([torch.from_numpy(b) for b, _ in results], [s for _, s in results])
    if path is not None:
        from dcvkit.io import save_checkpoint

        try:
            save_checkpoint(path, {"boxes": out.boxes, "seconds": out.seconds})
        except OSError:  # a read-only home is not an error; the proposals are just not cached
            pass
    return out


def recall(gt_boxes: Sequence[Tensor], proposals: Sequence[Tensor], iou: float, top: int | None = None) -> float:
    """Fraction of ground-truth boxes covered by at least one of the first ``top`` proposals at ``iou``."""
    from torchvision.ops import box_iou

    hit = total = 0
    for g, p in zip(gt_boxes, proposals):
        if len(g) == 0:
            continue
        total += len(g)
        p = p[:top] if top else p
        if len(p):
            hit += int((box_iou(g, p).max(1).values >= iou).sum())
    if total == 0:
        raise DataError("recall: the images have no ground-truth boxes")
    return hit / total


__all__ = ["SlidingWindows", "SelectiveSearch", "selective_search", "build_proposer", "propose_all",
           "ProposalSet", "recall", "METHODS", "cache_dir"]
