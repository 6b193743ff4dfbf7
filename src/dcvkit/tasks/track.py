"""Multi-object tracking by detection: a trained dcvkit detector finds the objects of every frame, a tracker
(:mod:`dcvkit.models.track`) links them into tracks with persistent ids, and the tracking metrics
(:mod:`dcvkit.metrics.tracking`) score them against MOTChallenge ground truth.

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.track import TrackConfig, VideoTracker, track, evaluate
    result = track("runs/detect/yolo", "street.mp4", TrackConfig(tracker="bytetrack"))  # run directory
    scores = evaluate("runs/detect/yolo", "clips/", TrackConfig(tracker="all"))      # every tracker, same boxes
    stream = VideoTracker("runs/detect/yolo", TrackConfig())  # frame by frame: ids persist across calls
    tracks = stream(frame)                                    # (H, W, 3) uint8 RGB -> Tracks

Tracking trains nothing: it reads a ``dcv detect train`` run (any detector of the lineage; ``yolo`` is the
one fast enough for video) and holds no weights of its own, so it is a tool of the CLI (``dcv track``) rather
than an entry of the task table. Frames of any size are letterboxed to the detector's training size (or
``img_size``) and the boxes mapped back to the frame's pixels; the appearance tracker's embeddings are pooled
from the detector's own feature map during the same forward pass (:class:`DetectorFeatures`).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from dcvkit.config import to_dict, validate
from dcvkit.data.mot import FrameSource, Sequence, mot_lines, open_source, read_sequences, write_video
from dcvkit.engine import seed_everything
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.metrics.tracking import Frame, track_metrics
from dcvkit.models.detect.postprocess import Detections, PostProcess
from dcvkit.models.track import TRACKERS, DetectorFeatures, Tracker, Tracks
from dcvkit.tasks.configs import TrackConfig


@dataclass
class FrameDetections:
    """One frame's detections in the frame's pixels: boxes (n, 4) x1 y1 x2 y2, scores, labels, and the
    appearance embeddings (n, d) when asked for; ``seconds``: letterbox + forward + post-processing (+ pooling)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray | None
    seconds: float


class FrameDetector:
    """A trained detector applied to video frames of any size (see the module docstring)."""

    def __init__(self, weights: str | os.PathLike, cfg: TrackConfig, embeddings: bool = False,
                 loaded: tuple[Any, dict[str, Any]] | None = None):
        from dcvkit.tasks.detect import load_detector, meta_proposer

        # ``loaded``: (model, meta) of load_detector's already in memory (dcv serve's run), else read weights
        self.model, self.meta = loaded if loaded is not None else load_detector(weights, cfg.device)
        self.proposer = meta_proposer(self.meta)
        self.post = PostProcess(**{**self.meta["post"], "score_thresh": cfg.score_thresh})
        h, w = self.meta["img_size"]
        if cfg.img_size is not None:
            if self.model.fixed_size and cfg.img_size != max(h, w):
                raise ConfigError(f"--img-size {cfg.img_size}: {self.meta['model']} only takes {h}x{w} images")
            h = w = -(-int(cfg.img_size) // 32) * 32
        self.size = (h, w)
        self.features = DetectorFeatures(self.model) if embeddings else None
        self.agnostic_nms = self.post.nms_iou if cfg.agnostic_nms else None
        self.classes: list[str] = list(self.meta["classes"])

    def _input(self, frame: np.ndarray):
        from dcvkit.data.letterbox import letterbox_tensor

        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise DataError(f"a frame must be an (H, W, 3) uint8 RGB array, got {frame.dtype} {tuple(frame.shape)}")
        x = frame
        if self.model.in_chans == 1:
            import cv2

            x = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None]  # ITU-R 601 weights, as PIL's "L"
        return letterbox_tensor(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1), self.size)

    def __call__(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> FrameDetections:
        """Detect in ``frame`` (H, W, 3) uint8 RGB. With ``boxes`` (frame pixels), embed those instead of the
        detections (the benchmark's ground-truth rows): the forward pass runs all the same."""
        from dcvkit.tasks.detect import detect_images

        t0 = time.perf_counter()
        x, p = self._input(frame)
        x = x[None]
        props = [self.proposer(x[0])] if self.proposer else None
        with self.features if self.features is not None else contextlib.nullcontext():
            det = detect_images(self.model, self.meta, x, props, self.post)[0][0]
        if self.agnostic_nms is not None and len(det):  # best first: a box beaten by any class's goes
            from torchvision.ops import nms

            keep = nms(det.boxes, det.scores, self.agnostic_nms)
            det = Detections(det.boxes[keep], det.scores[keep], det.labels[keep])
        if boxes is not None:  # given boxes: into letterbox pixels, to be embedded
            given = np.asarray(boxes, float).reshape(-1, 4)
            lb = p.to_letterbox(torch.from_numpy(given))
            emb = self.features.embed(lb, self.size[1]).numpy().astype(np.float64) if self.features else None
            return FrameDetections(given, np.ones(len(given)), np.zeros(len(given), np.int64), emb,
                                   time.perf_counter() - t0)
        emb = self.features.embed(det.boxes, self.size[1]) if self.features is not None else None
        # letterbox pixels -> the frame's (boxes left in the padding dropped, with their embeddings)
        b = p.to_original(det.boxes)
        keep = ((b[:, 2] - b[:, 0]) >= 1) & ((b[:, 3] - b[:, 1]) >= 1)
        return FrameDetections(b[keep].numpy().astype(np.float64), det.scores[keep].numpy().astype(np.float64),
                               det.labels[keep].numpy().astype(np.int64),
                               emb[keep].numpy().astype(np.float64) if emb is not None else None,
                               time.perf_counter() - t0)


def make_tracker(name: str, cfg: TrackConfig) -> Tracker:
    """Tracker ``name`` with the thresholds of ``cfg`` (each tracker takes the ones it has)."""
    if name not in TRACKERS:
        raise ConfigError(f"--tracker {name}: choose one of {', '.join(TRACKERS)}" +
                          (" (all is for dcv track val)" if name == "all" else ""))
    return TRACKERS[name].from_options(track_thresh=cfg.track_thresh, low_thresh=cfg.score_thresh,
                                       buffer=cfg.buffer)


def tracker_names(cfg: TrackConfig) -> list[str]:
    return list(TRACKERS) if cfg.tracker == "all" else [cfg.tracker]


class VideoTracker:
    """Detector + tracker on a stream of frames: ``tracker(frame)`` -> that frame's :class:`Tracks`. Ids
    persist across calls (``persist=False`` starts a new stream: tracks forgotten, ids still never reused)."""

    def __init__(self, weights: str | os.PathLike, cfg: TrackConfig = TrackConfig(),
                 detector: FrameDetector | None = None):
        cfg = validate(cfg, "config")
        self.tracker = make_tracker(cfg.tracker, cfg)
        self.detector = detector or FrameDetector(weights, cfg, embeddings=self.tracker.needs_embeddings)
        self.detect_seconds: list[float] = []
        self.track_seconds: list[float] = []

    def __call__(self, frame: np.ndarray, persist: bool = True) -> Tracks:
        if not persist:
            self.tracker.reset()
        d = self.detector(frame)
        t0 = time.perf_counter()
        tracks = self.tracker.update(d.boxes, d.scores, d.labels, d.embeddings)
        self.track_seconds.append(time.perf_counter() - t0)
        self.detect_seconds.append(d.seconds)
        return tracks


# --- dcv track RUN SOURCE ----------------------------------------------------------------------------------


@dataclass
class TrackResult:
    run_dir: Path
    frames: int
    tracks: int
    fps: float
    detector_ms_per_frame: float
    tracker_ms_per_frame: float
    metrics: dict[str, float] | None = None
    files: list[str] = field(default_factory=list)


def _annotated(source: FrameSource, stream: VideoTracker, trail: int, tracks: dict[int, Tracks],
               advance: Any) -> Iterator[np.ndarray]:
    """Frames with their tracks drawn, produced while tracking (the video is written as they come)."""
    from dcvkit.viz.track import TrackDrawer

    drawer = TrackDrawer(stream.detector.classes, trail)
    for k, frame in source:
        tracks[k] = stream(frame)
        advance(k)
        yield drawer.draw(frame, tracks[k])


def _results(tracks: dict[int, Tracks], classes: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The MOTChallenge result lines and the JSON rows of a run's tracks."""
    lines, rows = [], []
    for k, t in tracks.items():
        lines += mot_lines(k, t.ids, t.boxes, t.scores)
        rows += [{"frame": k, "id": int(i), "bbox": [round(b[0], 2), round(b[1], 2), round(b[2] - b[0], 2),
                                                      round(b[3] - b[1], 2)],
                  "score": round(float(s), 4), "class": classes[int(c)]}
                 for i, b, s, c in zip(t.ids, t.boxes.tolist(), t.scores, t.labels)]
    return lines, rows


def track(weights: str | os.PathLike, source: str | os.PathLike, cfg: TrackConfig = TrackConfig(),
          run_dir: str | os.PathLike | None = None) -> TrackResult:
    """Track every object of ``source`` (a video file, a folder of frames, a MOT sequence). Writes
    ``<project>/track/<name>/``: config.yaml, results.txt (MOTChallenge), tracks.json, tracks.mp4 (boxes, ids,
    trails; unless ``cfg.video`` is off), summary.json, and metrics.json when the source is a MOT sequence
    with ground truth."""
    cfg = validate(cfg, "config")
    seed_everything(cfg.seed)
    src = open_source(source)
    if len(src) == 0 and src.kind == "video":
        raise DataError(f"{source}: the video holds no frames")
    stream = VideoTracker(weights, cfg)
    out = Path(run_dir) if run_dir else new_run_dir(Path(cfg.project) / "track", cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    write_yaml(out / "config.yaml", {**to_dict(cfg), "weights": str(weights), "source": str(source)})
    tracks: dict[int, Tracks] = {}
    bar, advance = _progress(cfg.progress, len(src), f"{cfg.tracker}: tracking")
    t0 = time.perf_counter()
    with bar:
        frames = _annotated(src, stream, cfg.trail, tracks, advance)
        if cfg.video:
            write_video(out / "tracks.mp4", frames, src.fps)
        else:
            for _ in frames:
                pass
    wall = time.perf_counter() - t0
    n = len(tracks)
    if n == 0:
        raise DataError(f"{source}: no frames could be read")
    lines, rows = _results(tracks, stream.detector.classes)
    atomic_write(out / "results.txt", "\n".join(lines) + ("\n" if lines else ""))
    write_json(out / "tracks.json", rows)
    result = TrackResult(out, n, len({r["id"] for r in rows}), n / wall,
                         1000 * float(np.mean(stream.detect_seconds)), 1000 * float(np.mean(stream.track_seconds)))
    result.files = ["config.yaml", "results.txt", "tracks.json", *(["tracks.mp4"] if cfg.video else []),
                    "summary.json"]
    if src.sequence is not None and src.sequence.gt is not None:
        result.metrics = track_metrics([_frames(src.sequence, tracks)])
        write_json(out / "metrics.json", result.metrics)
        result.files.append("metrics.json")
    write_json(out / "summary.json", {"source": str(source), "kind": src.kind, "tracker": cfg.tracker,
                                      "frames": n, "tracks": result.tracks, "fps": result.fps,
                                      "detector_ms_per_frame": result.detector_ms_per_frame,
                                      "tracker_ms_per_frame": result.tracker_ms_per_frame,
                                      "metrics": result.metrics})
    return result


def _progress(show: bool, total: int, description: str):
    """A progress bar (frames done, frames per second: :class:`dcvkit.progress.Bar`) and its advance(frames
    done) function."""
    from dcvkit.progress import Bar

    bar = Bar(total or None, description, enabled=show, unit=" frames")
    t0 = time.perf_counter()

    def advance(k: int) -> None:
        bar.update(k, f"{k / max(time.perf_counter() - t0, 1e-9):.1f} frames/s")

    return bar, advance


def _frames(seq: Sequence, tracks: dict[int, Tracks]) -> list[Frame]:
    """The metrics' input: per frame, the ground truth to score (MOT's conf column 0 marks boxes to ignore)
    and the tracks."""
    frames = []
    for k in range(1, len(seq) + 1):
        g = seq.gt_frame(k)
        g = g.select(g.conf != 0)
        t = tracks.get(k, Tracks.empty())
        frames.append(Frame(g.ids, g.boxes, t.ids, t.boxes))
    return frames


# --- dcv track val RUN --data CLIPS ------------------------------------------------------------------------


def detect_sequence(detector: FrameDetector, seq: Sequence, progress: Any = None) -> list[FrameDetections]:
    """Every frame of ``seq`` detected once (the trackers then all see the same detections)."""
    out = []
    for k, frame in FrameSource(seq.root, "sequence", len(seq), seq.fps, seq.frames, seq):
        out.append(detector(frame))
        if progress:
            progress(k)
    return out


def run_tracker(tracker: Tracker, detections: list[FrameDetections]) -> tuple[dict[int, Tracks], list[float]]:
    """A tracker over a sequence's detections: frame -> tracks, and the seconds of each update."""
    tracks, seconds = {}, []
    for k, d in enumerate(detections, 1):
        t0 = time.perf_counter()
        tracks[k] = tracker.update(d.boxes, d.scores, d.labels, d.embeddings)
        seconds.append(time.perf_counter() - t0)
    return tracks, seconds


def score_trackers(names: list[str], cfg: TrackConfig, sequences: list[Sequence],
                   detections: list[list[FrameDetections]]) -> list[dict[str, Any]]:
    """Each tracker on the same detections of every sequence: its metrics and milliseconds per frame."""
    rows = []
    for name in names:
        per_seq, secs, objects = [], [], []
        for seq, dets in zip(sequences, detections):
            tracker = make_tracker(name, cfg)
            tracks, s = run_tracker(tracker, dets)
            per_seq.append(_frames(seq, tracks))
            secs += s
            objects += [len(d.boxes) for d in dets]
        row: dict[str, Any] = {"tracker": name, **track_metrics(per_seq)}
        row["tracker_ms_per_frame"] = 1000 * float(np.mean(secs)) if secs else 0.0
        row["detections_per_frame"] = float(np.mean(objects)) if objects else 0.0
        rows.append(row)
    return rows


def evaluate(weights: str | os.PathLike, data: str | os.PathLike, cfg: TrackConfig = TrackConfig(tracker="all"),
             out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every tracker of ``cfg.tracker`` (``all``: each of them) on the MOT sequences of ``data`` (a sequence,
    or a folder of them with a seqmap): each sequence is detected once and every tracker links the same
    detections. Returns (and writes into ``out_dir`` as results.json and table.md) one row per tracker: MOTA,
    MOTP, IDF1, HOTA (DetA, AssA, LocA), ID switches, FP, FN, fragmentations, tracker ms per frame; the
    detector's ms per frame apart."""
    from dcvkit.viz.report import markdown_table

    cfg = validate(cfg, "config")
    seed_everything(cfg.seed)
    names = tracker_names(cfg)
    sequences = read_sequences(data)
    missing = [s.name for s in sequences if s.gt is None]
    if missing:
        raise DataError(f"{data}: sequence {missing[0]} has no gt/gt.txt to score against")
    detector = FrameDetector(weights, cfg, embeddings=any(TRACKERS[n].needs_embeddings for n in names))
    total = sum(len(s) for s in sequences)
    bar, advance = _progress(cfg.progress, total, f"{detector.meta['model']}: detecting")
    with bar:
        detections, done = [], 0
        for s in sequences:
            detections.append(detect_sequence(detector, s, lambda k, base=done: advance(base + k)))
            done += len(s)
    det_ms = 1000 * float(np.mean([d.seconds for ds in detections for d in ds]))
    rows = score_trackers(names, cfg, sequences, detections)
    objects = sum(int((s.gt_frame(k).conf != 0).sum()) for s in sequences for k in range(1, len(s) + 1))
    result = {"data": str(data), "weights": str(weights), "detector": detector.meta["model"],
              "sequences": len(sequences), "frames": total, "objects": objects,
              "detector_ms_per_frame": det_ms, "device": str(next(detector.model.parameters()).device),
              "threads": torch.get_num_threads(), "rows": rows, "config": to_dict(cfg)}
    if objects < 100:
        result["warning"] = f"only {objects} ground-truth boxes: the metrics are noisy at this size"
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", result)
        atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    return result


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One printed row per tracker (metrics as percentages, as MOTChallenge tables show them)."""
    return [{"tracker": r["tracker"], "HOTA": f"{100 * r['HOTA']:.1f}", "MOTA": f"{100 * r['MOTA']:.1f}",
             "IDF1": f"{100 * r['IDF1']:.1f}", "DetA": f"{100 * r['DetA']:.1f}", "AssA": f"{100 * r['AssA']:.1f}",
             "MOTP": f"{100 * r['MOTP']:.1f}", "IDSW": r["IDSW"], "Frag": r["Frag"], "FP": r["FP"], "FN": r["FN"],
             "tracker ms/frame": f"{r['tracker_ms_per_frame']:.3f}"} for r in result["rows"]]


__all__ = ["TrackConfig", "FrameDetector", "FrameDetections", "VideoTracker", "TrackResult", "track", "evaluate",
           "make_tracker", "tracker_names", "detect_sequence", "run_tracker", "score_trackers", "table_rows"]
