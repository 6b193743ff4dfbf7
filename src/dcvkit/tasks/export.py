"""``dcv export RUN --format onnx``: a trained classifier or YOLO as an ONNX file, checked with onnxruntime.

The exported graph takes pixels, so users of the file need no dcvkit: input ``images`` float32
(N, C, H, W) in 0..255 at the training size (any N); the normalisation (the run's mean and std) is inside.
Outputs:

* classifiers: ``probs`` (N, classes) softmax probabilities;
* ``yolo`` / ``yolo_v1``: ``boxes`` (N, K, 4) x1 y1 x2 y2 pixels and ``scores`` (N, K, classes) for every
  grid prediction, before thresholding and NMS (run those as :class:`~dcvkit.models.detect.PostProcess`
  does: score > 0.05, per-class NMS at 0.5); batch norms are folded into the convolutions first.

The check runs the PyTorch model as trained (batch norms not folded) and the ONNX file through
onnxruntime on images of the run's test split (its validation split when it has none) and compares the
raw outputs and, for detectors, the post-processed boxes. ONNX files are produced and run by
onnxruntime only, never unpickled. The exporter is torch.onnx's (``torch.export`` based, needs onnxscript).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json

FORMATS = ("onnx",)


class Pixels(nn.Module):
    """(N, C, H, W) pixels 0..255 -> ``fn(model, normalised)``."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float], detector: bool):
        super().__init__()
        self.model, self.detector = model, detector
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255)

    def forward(self, images: Tensor):
        x = (images - self.mean) / self.std
        if self.detector:
            return self.model.predict(x)
        return self.model(x).softmax(1)


def _run_model(weights: str | os.PathLike, ckpt: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    from dcvkit.tasks.common import load_run_model

    meta = ckpt.get("meta") or {}
    task = meta.get("task")
    if task == "classify":
        if meta.get("augment", {}).get("standardizes"):
            raise ConfigError(f"{weights}: the run standardises featurewise (--augment ...); export supports the "
                              "mean/std normalisation only")
        return load_run_model(weights, "classify", "dcv classify train", "cpu", ckpt)
    if task == "detect":
        if not meta.get("model", "").startswith("yolo"):
            raise ConfigError(f"{weights}: {meta.get('model')} is not exportable (its proposals and RoI ops run "
                              "outside one graph); export yolo, yolo_v1 or a classifier")
        return load_run_model(weights, "detect", "dcv detect train", "cpu", ckpt)
    raise ConfigError(f"{weights}: a {task or 'non-dcvkit'} checkpoint; export takes classify runs and yolo "
                      "detect runs")


def check_images(weights: str | os.PathLike, ckpt: dict[str, Any], n: int) -> Tensor:
    """``n`` uint8 images of the run's test split (or validation split)."""
    from dcvkit.config import from_dict

    task = ckpt["meta"]["task"]
    if task == "classify":
        from dcvkit.tasks.classify import ClassifyConfig

        cfg = from_dict(ClassifyConfig, ckpt.get("config", {}), where=str(weights))
        splits = cfg.load_splits(cfg.seed)
    else:
        from dcvkit.tasks.detect import DetectConfig, load_splits

        cfg = from_dict(DetectConfig, ckpt.get("config", {}), where=str(weights))
        splits = load_splits(cfg)
    data = splits.test if splits.test is not None else splits.val
    if data is None or not hasattr(data, "images"):
        raise DataError(f"{weights}: the run's data has no in-memory test or validation split to check the export on")
    return data.images[:n]


def missing_dependency() -> str | None:
    """The first of onnx, onnxscript and onnxruntime that is not installed (None: export works)."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def export(weights: str | os.PathLike, fmt: str = "onnx", out: str | os.PathLike | None = None,
           check: int = 16, atol: float = 1e-3) -> dict[str, Any]:
    """Export a run's best.pt (or a .pt); returns the report (also written next to the file as JSON)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    missing = missing_dependency()
    if missing:
        raise ConfigError(f"dcv export needs {missing}: pip install 'dcvkit[export]'")
    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = _run_model(weights, ckpt)
    detector = meta["task"] == "detect"
    reference = Pixels(model, meta["mean"], meta["std"], detector).eval()
    if detector:  # the exported copy gets its batch norms folded; the reference keeps them
        import copy

        exported = Pixels(copy.deepcopy(model).fuse(), meta["mean"], meta["std"], detector).eval()
    else:
        exported = reference
    src = Path(weights)
    run_dir = src if src.is_dir() else src.parent
    out = Path(out) if out else run_dir / f"{meta['model']}.onnx"
    h, w = meta.get("img_size") or model.img_size
    example = torch.rand(2, model.in_chans, h, w) * 255
    names = ["boxes", "scores"] if detector else ["probs"]
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad():
        exported(example)  # fills the model's per-grid caches before tracing, so they export as constants
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # the exporter prints its progress
        torch.onnx.export(exported, (example,), str(tmp), dynamo=True, external_data=False, input_names=["images"],
                          output_names=names,
                          dynamic_shapes={"images": {0: torch.export.Dim("batch")}})
    os.replace(tmp, out)
    report: dict[str, Any] = {"file": str(out), "model": meta["model"], "task": meta["task"],
                              "input": f"images float32 (N, {model.in_chans}, {h}, {w}) pixels 0..255",
                              "outputs": names, "classes": meta["classes"]}
    if check:
        report.update(compare(out, reference, check_images(weights, ckpt, check), meta, atol))
    write_json(out.with_suffix(".json"), report)
    return report


def compare(path: Path, reference: nn.Module, images: Tensor, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Run the ONNX file with onnxruntime and the PyTorch model on ``images``; differences and a verdict."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images.float()
    got = [torch.from_numpy(a) for a in sess.run(None, {"images": x.numpy()})]
    with torch.no_grad():
        want = reference(x)
    want = list(want) if isinstance(want, tuple) else [want]
    diffs = {name: float((g - r).abs().max()) for name, g, r in zip(("boxes", "scores") if len(want) == 2
                                                                     else ("probs",), got, want)}
    report: dict[str, Any] = {"check_images": len(images), "max_abs_diff": diffs}
    if len(want) == 2:
        from dcvkit.models.detect.postprocess import PostProcess

        post = PostProcess(**meta["post"])
        size = tuple(images.shape[-2:])
        same, n_boxes, box_diff = True, 0, 0.0
        for gb, gs, rb, rs in zip(got[0], got[1], want[0], want[1]):
            a, b = post(gb, gs, size), post(rb, rs, size)
            n_boxes += len(b)
            if len(a) != len(b) or not torch.equal(a.labels, b.labels):
                same = False
                continue
            if len(a):
                box_diff = max(box_diff, float((a.boxes - b.boxes).abs().max()))
        report.update(detections=n_boxes, same_detections=same and box_diff <= atol, max_box_diff_px=box_diff)
        report["ok"] = report["same_detections"]
    else:
        report["same_top1"] = bool((got[0].argmax(1) == want[0].argmax(1)).all())
        report["ok"] = report["same_top1"] and diffs["probs"] <= atol
    return report





class OnnxDetector:
    """A YOLO exported by :func:`export`, run by onnxruntime behind the face :func:`dcvkit.tasks.detect.
    detect_images` uses (``detect``, ``parameters``), so ``dcv bench detect`` can time the same weights in
    both runtimes side by side. The graph normalises the pixels itself: use it with :func:`pixel_meta`."""

    proposal_method = "none"
    needs_proposals = False

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._device = torch.zeros(0)

    def parameters(self):
        yield self._device  # detect_images asks the first parameter for the device: the CPU

    def detect(self, images: Tensor, proposals=None, post=None):
        import numpy as np

        from dcvkit.models.detect.postprocess import PostProcess

        post = post or PostProcess()
        boxes, scores = self.session.run(None, {"images": np.ascontiguousarray(images.float().numpy())})
        size = (images.shape[-2], images.shape[-1])
        return [post(torch.from_numpy(b), torch.from_numpy(s), size) for b, s in zip(boxes, scores)]


def pixel_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` whose normalisation is the identity (the ONNX graph normalises): mean 0, std 1/255."""
    c = len(meta["mean"])
    return {**meta, "mean": [0.0] * c, "std": [1.0 / 255] * c}

__all__ = ["export", "compare", "FORMATS", "OnnxDetector", "pixel_meta", "missing_dependency"]
