"""MOTChallenge files and the frame sources a tracker reads: a MOT sequence folder, a video file, a folder
of frames.

A MOTChallenge sequence::

    SEQ/seqinfo.ini        [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    SEQ/img1/000001.png    frames numbered from 1, without gaps
    SEQ/gt/gt.txt          frame, id, x, y, w, h, conf, class, visibility   (one box a line; x, y: top left)

and beside the sequences ``seqmaps/<split>.txt`` (a ``name`` header, then one sequence a line), as TrackEval
reads them. Tracker results are the same lines with ``conf`` the score and -1 for the rest
(``frame, id, x, y, w, h, score, -1, -1, -1``). Boxes are read into x1 y1 x2 y2 pixels.

Every reader names the file (and the line) of what is wrong: a line with the wrong number of fields, a number
that is not one, a frame outside the sequence, the same id twice in a frame, frames missing from ``img1/``,
a video that cannot be decoded or stops before its header's frame count.
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from dcvkit.data.folders import IMAGE_EXTENSIONS
from dcvkit.errors import DataError
from dcvkit.io import atomic_write

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass
class MotBoxes:
    """One frame's boxes from a MOT file: ids (n,), boxes (n, 4) x1 y1 x2 y2, conf (n,), classes (n,),
    visibility (n,)."""

    ids: np.ndarray
    boxes: np.ndarray
    conf: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, keep: np.ndarray) -> "MotBoxes":
        return MotBoxes(self.ids[keep], self.boxes[keep], self.conf[keep], self.classes[keep], self.visibility[keep])

    @staticmethod
    def empty() -> "MotBoxes":
        return MotBoxes(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))


def read_mot_txt(path: str | Path, frames: int | None = None) -> dict[int, MotBoxes]:
    """A MOT ``gt.txt`` or results file: frame -> its boxes. ``frames``: the sequence's length (a line of a
    later frame is an error). Lines of 6 to 10 comma-separated numbers (MOT15's 10, MOT17's 9, or the 6 that
    matter); blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read MOT file ({getattr(e, 'strerror', None) or e})") from None
    rows: dict[int, list[list[float]]] = {}
    seen: set[tuple[int, int]] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.rstrip().rstrip(",").split(",")]
        if not 6 <= len(parts) <= 10:
            raise DataError(f"{path}:{n}: {len(parts)} fields; a MOT line is frame, id, x, y, w, h[, conf, class, "
                            "visibility[, z]] (6 to 10 comma-separated numbers)")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise DataError(f"{path}:{n}: not a number among {line.strip()[:80]!r}") from None
        if not all(math.isfinite(v) for v in vals[:6]):
            raise DataError(f"{path}:{n}: frame, id and box must be finite numbers")
        frame, tid = vals[0], vals[1]
        if frame != int(frame) or frame < 1 or (frames is not None and frame > frames):
            raise DataError(f"{path}:{n}: frame {vals[0]:g} is outside the sequence (frames 1 to "
                            f"{frames if frames is not None else 'N'}, numbered from 1)")
        if tid != int(tid):
            raise DataError(f"{path}:{n}: id {tid:g} is not a whole number")
        if vals[4] < 0 or vals[5] < 0:
            raise DataError(f"{path}:{n}: box width and height must be >= 0, got {vals[4]:g} x {vals[5]:g}")
        key = (int(frame), int(tid))
        if tid >= 0 and key in seen:
            raise DataError(f"{path}:{n}: id {int(tid)} appears twice in frame {int(frame)}")
        seen.add(key)
        vals += [1.0, -1.0, -1.0][len(vals) - 6:]  # what a short line leaves out: conf 1, class and visibility -1
        rows.setdefault(int(frame), []).append(vals[:9])
    out = {}
    for frame, r in rows.items():
        a = np.array(r, dtype=np.float64)
        boxes = np.stack([a[:, 2], a[:, 3], a[:, 2] + a[:, 4], a[:, 3] + a[:, 5]], 1)
        out[frame] = MotBoxes(a[:, 1].astype(np.int64), boxes, a[:, 6], a[:, 7].astype(np.int64), a[:, 8])
    return out


def mot_lines(frame: int, ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None,
              classes: np.ndarray | None = None, visibility: np.ndarray | None = None) -> list[str]:
    """MOT lines of one frame (results: ``scores`` and -1s; ground truth: conf 1, class, visibility)."""
    out = []
    for k, (i, b) in enumerate(zip(ids.tolist(), np.asarray(boxes, float).tolist())):
        x, y, w, h = b[0], b[1], b[2] - b[0], b[3] - b[1]
        if classes is None:
            s = float(scores[k]) if scores is not None else 1.0
            out.append(f"{frame},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1")
        else:
            v = float(visibility[k]) if visibility is not None else 1.0
            out.append(f"{frame},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,{int(classes[k])},{v:.4f}")
    return out


@dataclass
class Sequence:
    """A MOT sequence folder: its frames, ground truth (if it has one) and info."""

    root: Path
    name: str
    frames: list[Path]
    fps: float = 25.0
    gt: dict[int, MotBoxes] | None = None
    size: tuple[int, int] | None = None  # (width, height)
    info: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def gt_frame(self, frame: int) -> MotBoxes:
        return (self.gt or {}).get(frame, MotBoxes.empty())


def is_sequence(path: Path) -> bool:
    return path.is_dir() and ((path / "seqinfo.ini").is_file() or (path / "img1").is_dir())


def numbered_frames(folder: Path) -> list[Path]:
    """The image files of a frames folder in order; numbered names (000001.png) must run without gaps."""
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                   key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise DataError(f"{folder}: no frames found (image files: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if all(p.stem.isdigit() for p in files):
        numbers = [int(p.stem) for p in files]
        expected = list(range(numbers[0], numbers[0] + len(numbers)))
        if numbers != expected:
            gap = next(e for n, e in zip(numbers, expected) if n != e)
            raise DataError(f"{folder}: frames are not numbered in order without gaps (frame {gap} is missing or "
                            "repeated); MOT frames are 000001, 000002, ...")
    return files


def read_sequence(root: str | Path) -> Sequence:
    """A MOTChallenge sequence folder (``seqinfo.ini`` optional: ``img1/`` alone will do)."""
    root = Path(root)
    info: dict[str, str] = {}
    ini = root / "seqinfo.ini"
    if ini.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read_string(ini.read_text())
            info = dict(parser["Sequence"]) if parser.has_section("Sequence") else {}
        except (configparser.Error, OSError, UnicodeDecodeError) as e:
            raise DataError(f"{ini}: not a readable seqinfo.ini ({str(e).splitlines()[0][:120]})") from None
        if not info:
            raise DataError(f"{ini}: no [Sequence] section (name, imDir, frameRate, seqLength, imWidth, imHeight)")
    im_dir = root / info.get("imdir", "img1")
    if im_dir.resolve().parent != root.resolve():
        raise DataError(f"{ini}: imDir '{info.get('imdir')}' must be a folder of the sequence")
    if not im_dir.is_dir():
        raise DataError(f"{root}: no frames folder {im_dir.name}/; a MOT sequence holds img1/000001.png, ...")
    frames = numbered_frames(im_dir)
    try:
        length = int(info.get("seqlength", len(frames)))
        fps = float(info.get("framerate", 25))
        size = (int(info["imwidth"]), int(info["imheight"])) if "imwidth" in info and "imheight" in info else None
    except ValueError:
        raise DataError(f"{ini}: seqLength, frameRate, imWidth and imHeight must be numbers") from None
    if length != len(frames):
        raise DataError(f"{ini}: seqLength is {length} but {im_dir} holds {len(frames)} frames")
    if not (math.isfinite(fps) and fps > 0):
        raise DataError(f"{ini}: frameRate must be a positive number, got {fps}")
    gt_path = root / "gt" / "gt.txt"
    gt = read_mot_txt(gt_path, frames=len(frames)) if gt_path.is_file() else None
    return Sequence(root, info.get("name", root.name), frames, fps, gt, size, info)


def read_sequences(path: str | Path) -> list[Sequence]:
    """The MOT sequences at ``path``: one sequence folder; or a folder of them, those its seqmap lists
    (``seqmaps/*.txt``, TrackEval's layout) or else every sequence subfolder, in name order."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder of MOT sequences (a sequence holds seqinfo.ini and img1/)")
    if is_sequence(path):
        return [read_sequence(path)]
    maps = sorted((path / "seqmaps").glob("*.txt")) if (path / "seqmaps").is_dir() else []
    if maps:
        names: list[str] = []
        for m in maps:
            lines = [ln.strip() for ln in m.read_text().splitlines() if ln.strip()]
            names += [n for n in lines[1:] if n not in names]  # the first line is the header ("name")
        for n in names:
            if Path(n).name != n or not is_sequence(path / n):
                raise DataError(f"{maps[0].parent}: lists '{n}', which is not a sequence folder beside seqmaps/")
    else:
        names = sorted(p.name for p in path.iterdir() if is_sequence(p))
    if not names:
        raise DataError(f"{path}: no MOT sequences in it (folders with seqinfo.ini and img1/; dcv data clips "
                        "writes some)")
    return [read_sequence(path / n) for n in names]


def write_sequence(root: Path, name: str, frames: list[np.ndarray], gt_lines: list[str], fps: float = 25.0) -> Path:
    """Write a MOT sequence: ``img1/000001.png``..., ``gt/gt.txt``, ``seqinfo.ini`` (frames (H, W, 3) uint8)."""
    from PIL import Image
    import io as _io

    seq = root / name
    (seq / "img1").mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(frames, 1):
        buf = _io.BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        atomic_write(seq / "img1" / f"{k:06d}.png", buf.getvalue())
    atomic_write(seq / "gt" / "gt.txt", "\n".join(gt_lines) + ("\n" if gt_lines else ""))
    h, w = frames[0].shape[:2]
    atomic_write(seq / "seqinfo.ini", f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps:g}\n"
                                      f"seqLength={len(frames)}\nimWidth={w}\nimHeight={h}\nimExt=.png\n")
    return seq


def write_seqmap(root: Path, split: str, names: list[str]) -> Path:
    return atomic_write(root / "seqmaps" / f"{split}.txt", "name\n" + "".join(f"{n}\n" for n in names))


# --- frame sources -----------------------------------------------------------------------------------------


@dataclass
class FrameSource:
    """Frames in order, from a MOT sequence, a folder of frames or a video: ``len()`` frames, ``fps``, and
    iteration yielding (frame number from 1, (H, W, 3) uint8 RGB)."""

    path: Path
    kind: str  # "sequence" | "frames" | "video"
    count: int
    fps: float
    files: list[Path] = field(default_factory=list)
    sequence: Sequence | None = None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.kind == "video":
            yield from _video_frames(self.path, self.count)
            return
        from dcvkit.data.folders import decode

        for k, p in enumerate(self.files, 1):
            yield k, decode(p, 3, None).transpose(1, 2, 0)


def _opencv():
    """cv2, with FFmpeg's own messages silenced (a damaged video would print "[mjpeg @ 0x...] overread 8"
    lines beside dcvkit's one-line error); OPENCV_FFMPEG_LOGLEVEL set by the user wins."""
    import os

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # read when OpenCV first opens a video
    import cv2

    return cv2


def _video_frames(path: Path, count: int) -> Iterator[tuple[int, np.ndarray]]:
    cv2 = _opencv()

    cap = cv2.VideoCapture(str(path))
    k = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            k += 1
            yield k, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if count and k < count - 1:  # (containers round their frame count; one frame short is not truncation)
        raise DataError(f"{path}: truncated video: its header says {count} frames, {k} could be decoded; "
                        "re-encode or re-download it")


def open_source(path: str | Path) -> FrameSource:
    """What a tracker reads: a MOT sequence folder, a folder of frames, or a video file (OpenCV)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such video, frames folder or MOT sequence")
    if is_sequence(path):
        seq = read_sequence(path)
        return FrameSource(path, "sequence", len(seq), seq.fps, seq.frames, seq)
    if path.is_dir():
        files = numbered_frames(path)
        return FrameSource(path, "frames", len(files), 25.0, files)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DataError(f"{path}: not a video ({', '.join(sorted(VIDEO_EXTENSIONS))}), frames folder or MOT "
                        "sequence")
    cv2 = _opencv()

    cap = cv2.VideoCapture(str(path))
    try:
        ok = cap.isOpened()
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if ok else 0.0
        readable = ok and cap.read()[0]
    finally:
        cap.release()
    if not readable:
        raise DataError(f"{path}: unreadable video (OpenCV cannot decode a frame of it); check the file, or give "
                        "a folder of frames")
    return FrameSource(path, "video", max(count, 0), fps if math.isfinite(fps) and fps > 0 else 25.0)


def write_video(path: Path, frames: Iterator[np.ndarray] | list[np.ndarray], fps: float) -> Path:
    """An MP4 (``mp4v``) or AVI (``MJPG``) of RGB frames, written to a temp name and renamed."""
    cv2 = _opencv()

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = None
    try:
        for f in frames:
            if writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
                writer = cv2.VideoWriter(str(tmp), fourcc, fps, (f.shape[1], f.shape[0]))
                if not writer.isOpened():
                    raise DataError(f"{path}: OpenCV cannot write this video format; use .mp4 or .avi")
            writer.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
    except BaseException:
        if writer is not None:
            writer.release()
            writer = None
        tmp.unlink(missing_ok=True)  # a half-written video is not left behind
        raise
    finally:
        if writer is not None:
            writer.release()
    tmp.replace(path)
    return path


__all__ = ["MotBoxes", "read_mot_txt", "mot_lines", "Sequence", "read_sequence", "read_sequences", "write_sequence",
           "write_seqmap", "is_sequence", "numbered_frames", "FrameSource", "open_source", "write_video",
           "VIDEO_EXTENSIONS"]
