"""A trained run loaded once for serving: what it takes, how a request becomes network input, how a batch of
inputs runs, and the JSON each request gets back. One class per task (the task table names it:
``TaskSpec.serve``); each calls the task's own functions (``predict_tensors``, ``model.detect``,
``to_original``, ...) so that the server's answer for an image is the in-process ``predict``'s.

The flow of a request: :meth:`ServedRun.prepare` (in a request thread: decode the bytes with the project's
checked decoder, resize or letterbox, check the options) -> :class:`~dcvkit.serve.batching.Batcher` (one
worker per run gathers concurrent requests) -> :meth:`ServedRun.run_batch` (one forward pass per group of
inputs that can share it, then :meth:`ServedRun.finish` per request).
"""

from __future__ import annotations

import base64
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from torch import Tensor

from dcvkit.errors import ConfigError, DataError

BACKENDS = ("torch", "onnx")


@dataclass
class Item:
    """One request on its way through the batcher: the network input (None: a generator's request), what
    ``finish`` needs, and ``key``: requests with equal keys share a forward pass."""

    x: Tensor | None
    options: dict[str, Any]
    ctx: dict[str, Any] = field(default_factory=dict)
    key: tuple = ()


@dataclass(frozen=True)
class Option:
    """A request option: its type, default, bounds or choices, and its line in the API's description."""

    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, name: str, value: Any) -> Any:
        try:
            v = value if isinstance(value, self.kind) and not isinstance(value, bool) else self.kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"option {name}={str(value)[:40]!r}: not a{'n' if self.kind is int else ''} "
                              f"{self.kind.__name__}") from None
        if self.choices and v not in self.choices:
            raise ConfigError(f"option {name}={v!r}: choose one of {', '.join(self.choices)}")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ConfigError(f"option {name}={v}: must be in [{self.low}, {self.high}]")
        return v


def encode_png(array: np.ndarray, palette: list[int] | None = None, mode: str | None = None) -> bytes:
    """(H, W) or (H, W, 3|4) uint8 -> PNG bytes (a palette: a label map whose ids are its pixel values)."""
    from PIL import Image

    im = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette is not None:
        im = im.convert("P") if im.mode != "P" else im
        im.putpalette(palette)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_base64(array: np.ndarray, palette: list[int] | None = None, mode: str | None = None) -> str:
    return base64.b64encode(encode_png(array, palette, mode)).decode("ascii")


def chw_png(img: Tensor) -> bytes:
    """A (C, H, W) uint8 image (1 or 3 channels) as PNG bytes."""
    a = img.permute(1, 2, 0).numpy()
    return encode_png(a[..., 0] if a.shape[-1] == 1 else a)


class ServedRun:
    """A loaded run. Subclasses set ``task``, ``options`` and implement ``_load``, ``prepare``, ``forward``
    and ``finish``. ``accepts``: what a request sends (``image``, or ``none`` for a generator)."""

    task: ClassVar[str]
    accepts: ClassVar[str] = "image"
    takes_video: ClassVar[bool] = False  # a video upload is tracked (detectors)
    options: ClassVar[dict[str, Option]] = {}
    session: Any = None  # the onnxruntime session (--backend onnx)

    def __init__(self, name: str, weights: str | os.PathLike, device: str = "cpu", backend: str = "torch",
                 ckpt: dict[str, Any] | None = None):
        if backend not in BACKENDS:
            raise ConfigError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
        self.name, self.weights, self.device, self.backend = name, Path(weights), device, backend
        self._load(ckpt)
        if backend == "onnx":
            from dcvkit.tasks import get_task

            if "onnx" not in get_task(self.task).exports or not getattr(self.model, "export_outputs", ()):
                raise ConfigError(f"{weights}: --backend onnx: {self.meta['model']} does not export to ONNX (dcv "
                                  "export takes classifiers, yolo and yolo_v1, generators); use --backend torch")
            self._start_onnx(self._onnx_file())

    # --- what subclasses provide -----------------------------------------------------------------------
    def _load(self, ckpt: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def prepare(self, data: bytes | None, options: dict[str, Any], name: str = "upload") -> Item:
        raise NotImplementedError

    def prepare_video(self, data: bytes | None, options: dict[str, Any], name: str = "upload") -> Item:
        raise ConfigError(f"{name}: a {self.task} run takes images, not videos")

    def forward(self, x: Tensor, key: tuple, group: Sequence[Item]) -> list[Any]:
        """The network's outputs for a stack of inputs (one per item of ``group``, which share ``key``)."""
        raise NotImplementedError

    def _start_onnx(self, path: Path) -> None:
        from dcvkit.export import onnx_session

        self.session = onnx_session(path)  # onnxruntime's own threads (measured: 2 beat 1 on 2 cores)

    def finish(self, out: Any, item: Item) -> dict[str, Any]:
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------------------
    def parse_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every option with its default, the given ones parsed and checked (an unknown one is an error)."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ConfigError(f"unknown option {unknown[0]!r} for a {self.task} run; its options: {known}")
        return {k: (o.parse(k, given[k]) if k in given else o.default) for k, o in self.options.items()}

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/runs`` says about the run."""
        size = self.meta.get("img_size") or getattr(self.model, "img_size", None)
        return {"name": self.name, "task": self.task, "model": self.meta["model"], "backend": self.backend,
                "classes": list(self.meta.get("classes", [])), "accepts": self.accepts,
                "input": {"channels": int(getattr(self.model, "in_chans", 3)),
                          "size": [int(s) for s in size] if isinstance(size, (list, tuple)) else size},
                "options": {k: {"type": o.kind.__name__, "default": o.default, "help": o.help,
                                **({"choices": list(o.choices)} if o.choices else {}),
                                **({"min": o.low} if o.low is not None else {}),
                                **({"max": o.high} if o.high is not None else {})}
                            for k, o in self.options.items()}}

    def run_batch(self, items: Sequence[Item]) -> list[dict[str, Any] | Exception]:
        """One forward pass per group of items with the same key, then each item's answer (an item whose
        finishing fails gets its exception, the others their answers). Items without a network input (a
        generator's request, a video) do their work in ``finish``, each alone: that is their time."""
        out: list[dict[str, Any] | Exception] = [RuntimeError("not run")] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(it.key, []).append(i)
        for key, idx in groups.items():
            group = [items[i] for i in idx]
            batched = group[0].x is not None
            t0 = time.perf_counter()
            results = self.forward(torch.stack([it.x for it in group]), key, group) if batched else [None] * len(idx)
            ms = (time.perf_counter() - t0) * 1000
            for i, r in zip(idx, results):
                try:
                    t1 = time.perf_counter()
                    answer = self.finish(r, items[i])
                    own = ms if batched else (time.perf_counter() - t1) * 1000
                    out[i] = {"run": self.name, "task": self.task, **answer, "batch": len(idx) if batched else 1,
                              "network_ms": round(own, 3)}
                except Exception as e:  # noqa: BLE001 - travels back to that request alone
                    out[i] = e
        return out

    def _onnx_file(self) -> Path:
        """The run's ONNX file: ``dcv export``'s, written now when missing or older than the checkpoint
        (exported and checked against PyTorch once, as ``dcv export`` does)."""
        from dcvkit.export import export, missing_dependency

        missing = missing_dependency()
        if missing:
            raise ConfigError(f"--backend onnx needs {missing}: pip install 'dcvkit[export]'")
        run_dir = self.weights if self.weights.is_dir() else self.weights.parent
        path = run_dir / f"{self.meta['model']}.onnx"
        ckpt = self.weights / "best.pt" if self.weights.is_dir() else self.weights
        if not path.is_file() or path.stat().st_mtime < ckpt.stat().st_mtime:
            export(self.weights, "onnx", path)
        return path


def _decode(run: ServedRun, data: bytes | None, name: str, size: tuple[int, int] | None) -> Tensor:
    from dcvkit.data.folders import decode_upload

    if not data:
        raise DataError(f"{name}: no image in the request; send one (multipart field 'image', a JSON 'image' "
                          "in base64, or the bytes with Content-Type image/...)")
    return torch.from_numpy(decode_upload(data, run.model.in_chans, size, name))


class ClassifierRun(ServedRun):
    """Top-k classes with every class's probability; optionally a saliency map of the top class."""

    task = "classify"
    options = {"topk": Option(int, 5, "how many classes to list, most probable first", 1, 1000),
               "saliency": Option(str, "none", "a saliency map of the top class (a coloured PNG over the image)",
                                  choices=("none", "gradient", "smoothgrad", "gradcam", "occlusion"))}

    def _load(self, ckpt):
        from dcvkit.tasks.classify import load_classifier

        self.model, self.meta = load_classifier(self.weights, self.device, ckpt)
        if getattr(self.model, "input_ndim", 4) != 4:
            raise ConfigError(f"{self.weights}: '{self.meta['model']}' classifies clips; serving takes single images")
        self._explainable: Any = None

    def prepare(self, data, options, name="upload"):
        opts = self.parse_options(options)
        return Item(_decode(self, data, name, tuple(self.model.img_size)), opts)

    def forward(self, x, key, group):
        if self.session is not None:
            from dcvkit.export import run_session

            return list(run_session(self.session, {"images": x})[0])
        from dcvkit.tasks.classify import predict_tensors

        return list(predict_tensors(self.model, self.meta, x))

    def finish(self, probs, item):
        classes = self.meta["classes"]
        k = min(item.options["topk"], len(classes))
        vals, idx = probs.topk(k)
        out: dict[str, Any] = {"top": [{"class": classes[i], "probability": float(v)} for v, i in zip(vals, idx)],
                               "probabilities": {c: float(p) for c, p in zip(classes, probs.tolist())}}
        if item.options["saliency"] != "none":
            out["saliency"] = self.saliency(item.x, int(idx[0]), item.options["saliency"])
        return out

    def saliency(self, image: Tensor, target: int, method: str) -> dict[str, Any]:
        """The map of ``target`` as a PNG: the colour map's colours, opacity growing with the attribution."""
        from matplotlib import colormaps

        from dcvkit.explain.model import load_explainable
        from dcvkit.explain.saliency import saliency

        if self._explainable is None:  # loaded on the first request that asks, once
            self._explainable = load_explainable(self.weights, self.device)
        with torch.inference_mode(False):
            s = saliency(self._explainable, image, target, method)
        m = s.pixel.numpy()  # >= 0, (H, W)
        m = m / m.max() if m.max() > 0 else m
        rgba = (colormaps["inferno"](m) * 255).astype(np.uint8)
        rgba[..., 3] = (m * 200).astype(np.uint8)
        return {"method": method, "class": s.class_name, "png": png_base64(rgba, mode="RGBA"),
                **({"degenerate": s.info["degenerate"]} if "degenerate" in s.info else {})}


class DetectorRun(ServedRun):
    """Boxes in the uploaded image's own pixels, with classes and scores (letterboxed as ``dcv detect
    predict`` does). A video is tracked as ``dcv track`` does (this run's detector, the chosen tracker): the
    tracks of every frame."""

    task = "detect"
    takes_video = True
    options = {"score_thresh": Option(float, -1.0, "lowest score kept (-1: the run's own; a video: 0.1, dcv "
                                                   "track's)", -1.0, 1.0),
               "nms_iou": Option(float, -1.0, "NMS IoU (-1: the run's own)", -1.0, 1.0),
               "tracker": Option(str, "bytetrack", "a video: the tracker (see dcv track --help)",
                                 choices=("iou", "sort", "bytetrack", "appearance")),
               "max_frames": Option(int, 1500, "a video: the most frames tracked", 1, 100_000)}

    def _start_onnx(self, path):
        from dcvkit.export import OnnxDetector, pixel_meta

        self.session = OnnxDetector(path)  # the file's boxes and scores, post-processed as PyTorch's are
        self.session_meta = pixel_meta(self.meta)  # the graph normalises

    def _load(self, ckpt):
        from dcvkit.tasks.detect import load_detector, meta_proposer

        self.model, self.meta = load_detector(self.weights, self.device, ckpt)
        self.proposer = meta_proposer(self.meta)

    def prepare(self, data, options, name="upload"):
        from dcvkit.data.letterbox import letterbox_tensor

        opts = self.parse_options(options)
        original = _decode(self, data, name, None)
        x, placement = letterbox_tensor(original, tuple(self.meta["img_size"]))
        ctx = {"placement": placement, "proposals": self.proposer(x) if self.proposer else None}
        return Item(x, opts, ctx, key=(opts["score_thresh"], opts["nms_iou"]))

    def forward(self, x, key, group):
        from dcvkit.models.detect.postprocess import PostProcess
        from dcvkit.models.normalise import Normaliser

        post = dict(self.meta["post"])
        if key[0] >= 0:
            post["score_thresh"] = key[0]
        if key[1] >= 0:
            post["nms_iou"] = key[1]
        model, meta = (self.session, self.session_meta) if self.session is not None else (self.model, self.meta)
        with torch.inference_mode():
            dev = next(model.parameters()).device
            xs = Normaliser.from_meta(meta)(x.to(dev)).contiguous(memory_format=torch.channels_last)
            proposals = [it.ctx["proposals"].to(dev) for it in group] if self.proposer else None
            return [d.to("cpu") for d in model.detect(xs, proposals, PostProcess(**post))]

    def prepare_video(self, data, options, name="upload"):
        if not data:
            raise DataError(f"{name}: no video in the request")
        opts = self.parse_options(options)
        return Item(None, opts, {"video": data, "name": name}, key=("video", id(data)))  # each its own pass

    def track(self, item: Item) -> dict[str, Any]:
        """Every frame of the uploaded video through this run's detector and the chosen tracker (the bytes go
        to a private temp file that OpenCV reads, deleted after)."""
        import shutil
        import tempfile

        from dcvkit.data.mot import open_source
        from dcvkit.tasks.configs import TrackConfig
        from dcvkit.tasks.track import FrameDetector, VideoTracker

        o = item.options
        cfg = TrackConfig(tracker=o["tracker"], device=self.device,
                          **({"score_thresh": o["score_thresh"]} if o["score_thresh"] >= 0 else {}))
        tmp = Path(tempfile.mkdtemp(prefix="dcv-serve-"))
        try:
            path = tmp / "upload.mp4"  # our name, never the client's; OpenCV reads the container, not the suffix
            path.write_bytes(item.ctx["video"])
            try:
                source = open_source(path)
            except DataError:
                raise DataError(f"{item.ctx['name']}: unreadable video (OpenCV cannot decode a frame of it); send "
                                "an MP4, AVI, WebM or MOV file") from None
            if len(source) > o["max_frames"]:
                raise ConfigError(f"{item.ctx['name']}: {len(source)} frames, over max_frames={o['max_frames']}; "
                                  "send a shorter video or raise the option")
            detector = FrameDetector(self.weights, cfg, loaded=(self.model, self.meta),
                                     embeddings=o["tracker"] == "appearance")
            stream = VideoTracker(self.weights, cfg, detector)
            classes, frames, ids, size = self.meta["classes"], [], set(), (0, 0)
            for k, frame in source:
                size = frame.shape[:2]
                t = stream(frame)
                ids.update(int(i) for i in t.ids)
                frames.append({"frame": k, "tracks": [
                    {"id": int(i), "box": [round(float(v), 2) for v in b], "class": classes[int(c)],
                     "score": round(float(s), 5)} for i, b, s, c in zip(t.ids, t.boxes, t.scores, t.labels)]})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"width": int(size[1]), "height": int(size[0]), "fps": source.fps, "tracker": o["tracker"],
                "tracks": len(ids), "frames": frames, "boxes": []}

    def finish(self, det, item):
        from dcvkit.tasks.detect import to_original

        if "video" in item.ctx:
            return self.track(item)
        p = item.ctx["placement"]
        det = to_original(det, p)
        classes = self.meta["classes"]
        return {"width": p.width, "height": p.height,
                "boxes": [{"box": [round(v, 2) for v in b], "class": classes[int(c)], "class_id": int(c),
                           "score": round(float(s), 5)}
                          for b, s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist())]}


class SegmenterRun(ServedRun):
    """The class of every pixel at the upload's own size: a palette PNG of class ids, a coloured overlay, pixel
    counts per class (an autoencoder: its reconstruction)."""

    task = "segment"
    options = {"alpha": Option(float, 0.5, "opacity of the overlay's colours", 0.0, 1.0)}

    def _load(self, ckpt):
        from dcvkit.tasks.segment import load_segmenter

        self.model, self.meta = load_segmenter(self.weights, self.device, ckpt)

    def prepare(self, data, options, name="upload"):
        opts = self.parse_options(options)
        x = _decode(self, data, name, None)
        return Item(x, opts, key=tuple(x.shape))  # any size: images of one size share a pass

    def forward(self, x, key, group):
        from dcvkit.tasks.segment import predict_tensors

        return list(predict_tensors(self.model, self.meta, x))

    def finish(self, y, item):
        from dcvkit.data.annotations import palette

        img = item.x.permute(1, 2, 0).numpy()
        rgb = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img
        h, w = rgb.shape[:2]
        if self.meta.get("target") == "image":
            rec = y.permute(1, 2, 0).numpy()
            return {"width": w, "height": h, "reconstruction_png": png_base64(rec[..., 0] if rec.shape[-1] == 1
                                                                              else rec)}
        ids = y.numpy().astype(np.uint8)
        pal = np.array(palette(), dtype=np.uint8).reshape(-1, 3)
        a = item.options["alpha"]
        blend = np.where((ids > 0)[..., None], (1 - a) * rgb + a * pal[ids], rgb).round().astype(np.uint8)
        counts = np.bincount(ids.flatten(), minlength=len(self.meta["classes"]))
        return {"width": w, "height": h, "mask_png": png_base64(ids, palette()), "overlay_png": png_base64(blend),
                "pixels": {c: int(n) for c, n in zip(self.meta["classes"], counts) if n}}


class PoseRun(ServedRun):
    """People with their keypoints (x, y, presence) in the upload's own pixels, and the skeleton to draw. A
    top-down model (heatmap) sees the whole image as one person."""

    task = "pose"
    options = {"score_thresh": Option(float, -1.0, "lowest person score kept (-1: the run's own)", -1.0, 1.0)}

    def _load(self, ckpt):
        from dcvkit.tasks.pose import load_pose_model

        self.model, self.meta, self.schema = load_pose_model(self.weights, self.device, ckpt)

    def describe(self):
        return {**super().describe(), "keypoints": list(self.schema.names),
                "skeleton": [list(e) for e in self.schema.skeleton]}

    def prepare(self, data, options, name="upload"):
        from dcvkit.data.letterbox import letterbox_tensor

        opts = self.parse_options(options)
        x, placement = letterbox_tensor(_decode(self, data, name, None), tuple(self.meta["img_size"]))
        return Item(x, opts, {"placement": placement}, key=(opts["score_thresh"],))

    def forward(self, x, key, group):
        from dcvkit.models.normalise import Normaliser

        post = self.meta["post"]
        thresh = key[0] if key[0] >= 0 else post["score_thresh"]
        with torch.inference_mode():
            xs = Normaliser.from_meta(self.meta)(x.to(next(self.model.parameters()).device))
            given = {}
            if getattr(self.model, "needs_boxes", False):
                h, w = xs.shape[-2:]
                given = {"boxes": [torch.tensor([[0.0, 0.0, w, h]], device=xs.device)] * len(xs), "box_scores": None}
            return [d for d in self.model.detect_pose(xs, thresh, post["nms_iou"], **given)]

    def finish(self, det, item):
        from dcvkit.data.pose import to_original

        p = item.ctx["placement"]
        b, k, _ = to_original(p, det.boxes.cpu().numpy(), det.keypoints.cpu().numpy())
        return {"width": p.width, "height": p.height,
                "people": [{"box": [round(v, 2) for v in bb], "score": round(float(s), 5),
                            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(v), 4)]
                                          for x, y, v in kk]}
                           for bb, kk, s in zip(b.tolist(), k, det.scores.tolist())]}


class GeneratorRun(ServedRun):
    """Samples from the prior and an interpolation between two of them (slerp), as PNGs; a request sends no
    image, only options."""

    task = "generate"
    accepts = "none"
    options = {"n": Option(int, 8, "how many samples", 1, 64),
               "seed": Option(int, 0, "the seed of the latent codes (the same seed, the same images)", 0, 2**31 - 1),
               "steps": Option(int, 0, "frames of an interpolation between the first two samples (0: none)", 0, 32),
               "class": Option(str, "", "a conditional run: the class to draw (default: every class in turn)")}

    def _load(self, ckpt):
        from dcvkit.tasks.generate import load_generator

        self.model, self.meta = load_generator(self.weights, self.device, ckpt)

    def describe(self):
        return {**super().describe(), "latent_dim": int(self.model.latent_dim),
                "conditional": bool(self.model.num_classes)}

    def prepare(self, data, options, name="upload"):
        opts = self.parse_options(options)
        if opts["class"] and opts["class"] not in self.meta["classes"]:
            raise ConfigError(f"option class={opts['class']!r}: not one of the run's classes "
                              f"({', '.join(self.meta['classes'])})")
        if opts["class"] and not self.model.num_classes:
            raise ConfigError(f"option class: {self.meta['model']} is not class-conditional")
        return Item(None, opts, key=("generate",))

    def _decode_codes(self, z: Tensor, y: Tensor | None) -> Tensor:
        from dcvkit.models.generate.base import to_uint8

        if self.session is not None:
            from dcvkit.export import run_session

            feed = {"z": z} | ({"y": y.float()} if y is not None else {})
            return run_session(self.session, feed)[0].round().clamp(0, 255).to(torch.uint8)
        with torch.inference_mode():
            return to_uint8(self.model.generate(z, y)).cpu()

    def finish(self, _: None, item: Item) -> dict[str, Any]:
        """Each request draws its own codes from its own seed."""
        from dcvkit.explain.latent import interpolation

        opts = item.options
        g = torch.Generator().manual_seed(opts["seed"])
        n, k = opts["n"], self.model.num_classes
        z = torch.randn(n, self.model.latent_dim, generator=g)
        y = None
        if k:
            ids = (torch.full((n,), self.meta["classes"].index(opts["class"])) if opts["class"]
                   else torch.arange(n) % k)
            y = torch.nn.functional.one_hot(ids, k).float()
        imgs = self._decode_codes(z, y)
        out: dict[str, Any] = {"images": [_png_chw(i) for i in imgs]}
        if opts["steps"] and n >= 2:
            zs = interpolation(z[0], z[1], opts["steps"])
            ys = None if y is None else y[:1].expand(len(zs), -1)
            out["interpolation"] = [_png_chw(i) for i in self._decode_codes(zs, ys)]
        return out


def _png_chw(img: Tensor) -> str:
    return base64.b64encode(chw_png(img)).decode("ascii")


#: the class serving each task's runs (the task table's ``serve`` names them)
SERVED: dict[str, Callable[..., ServedRun]] = {"ClassifierRun": ClassifierRun, "DetectorRun": DetectorRun,
                                               "SegmenterRun": SegmenterRun, "PoseRun": PoseRun,
                                               "GeneratorRun": GeneratorRun}


def load_run(name: str, weights: str | os.PathLike, device: str = "cpu", backend: str = "torch") -> ServedRun:
    """A run directory or checkpoint loaded for serving: its task read from the checkpoint's meta, the task
    table's ``serve`` class built on it (weights-only loading, as everywhere)."""
    from dcvkit.io import load_checkpoint
    from dcvkit.tasks import task_of_checkpoint

    ckpt = load_checkpoint(weights, map_location="cpu")
    spec = task_of_checkpoint(ckpt.get("meta"), where=str(weights))
    if not spec.serve:
        raise ConfigError(f"{weights}: {spec.name} runs are not served")
    return SERVED[spec.serve](name, weights, device, backend, ckpt)


__all__ = ["ServedRun", "ClassifierRun", "DetectorRun", "SegmenterRun", "PoseRun", "GeneratorRun", "Item", "Option",
           "load_run", "encode_png", "png_base64", "chw_png", "BACKENDS", "SERVED"]
