"""``dcv export RUN --format onnx``: a trained run as an ONNX file, checked against PyTorch with onnxruntime.

Which runs export is the task table's ``exports`` and, within a task, the model family's: a model exports
when its class names the outputs of its ``forward_export`` (``export_outputs``). The graph is
:class:`ExportGraph`: the run's :class:`~dcvkit.models.normalise.Normaliser` (the one training and predict
use, featurewise standardization included) in front of ``forward_export``, so users of the file need no
dcvkit. Inputs and outputs, by family:

* classifiers: ``images`` float32 (N, C, H, W) pixels 0..255 at the training size -> ``probs`` (N, classes);
* one-graph detectors (``yolo``, ``yolo_v1``): ``images`` -> ``boxes`` (N, K, 4) x1 y1 x2 y2 pixels and
  ``scores`` (N, K, classes) for every grid prediction, before thresholding and NMS (run those as
  :class:`~dcvkit.models.detect.PostProcess` does: score > 0.05, per-class NMS at 0.5); batch norms are
  folded into the convolutions first;
* generative models: ``z`` (N, latent) [and ``y`` (N, classes) class weights for a conditional model] ->
  ``images`` (N, C, H, W) pixels 0..255 (float).

The check runs the PyTorch model as trained (batch norms not folded) and the ONNX file through
onnxruntime on the run's test images (its validation split when it has none; latent codes from the prior
for generators) and compares the raw outputs and what they mean: the top-1 class, the post-processed boxes,
the pixels. ONNX files are produced and run by onnxruntime only, never unpickled. The exporter is
torch.onnx's (``torch.export`` based, needs onnxscript).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dcvkit.choices import EXPORT_FORMATS
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_json

FORMATS = EXPORT_FORMATS


class ExportGraph(nn.Module):
    """What an exported file computes: ``normaliser`` on the first input (pixels), when given, then the
    model's ``forward_export``."""

    def __init__(self, model: nn.Module, normaliser: nn.Module | None = None):
        super().__init__()
        self.model, self.normaliser = model, normaliser

    def forward(self, *inputs: Tensor) -> Any:
        if self.normaliser is not None:
            inputs = (self.normaliser(inputs[0]), *inputs[1:])
        return self.model.forward_export(*inputs)


def missing_dependency() -> str | None:
    """The first of onnx, onnxscript and onnxruntime that is not installed (None: export works)."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def _exportable(weights: str | os.PathLike, ckpt: dict[str, Any], fmt: str) -> tuple[Any, nn.Module, dict[str, Any]]:
    """(the task's table entry, the model, its meta), or a one-line error saying what does export."""
    from dcvkit.models import list_models, model_entry
    from dcvkit.models.trained import load_run_model
    from dcvkit.tasks import TASKS, task_of_checkpoint

    spec = task_of_checkpoint(ckpt.get("meta"), where=str(weights))
    if fmt not in spec.exports:
        takes = [t.name for t in TASKS.values() if fmt in t.exports]
        raise ConfigError(f"{weights}: a {spec.name} run; dcv export --format {fmt} takes {', '.join(takes)} runs")
    model, meta = load_run_model(weights, spec.meta_task, f"dcv {spec.name} train", "cpu", ckpt)
    if not getattr(model, "export_outputs", ()):
        ok = [m for m in list_models(spec.family) if getattr(model_entry(m).model_class, "export_outputs", ())]
        raise ConfigError(f"{weights}: {meta['model']} is not exportable (it is not one graph: its proposals or RoI "
                          f"ops run outside the network); of the {spec.family} models these export: {', '.join(ok)}")
    return spec, model, meta


def example_inputs(model: nn.Module, meta: dict[str, Any], n: int, seed: int = 0) -> tuple[Tensor, ...]:
    """``n`` inputs of each of the model's ``export_inputs``: random pixels at the training size, latent
    codes from the prior, classes cycling (one-hot)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for name in model.export_inputs:
        if name == "images":
            h, w = meta.get("img_size") or model.img_size
            out.append(torch.rand(n, model.in_chans, h, w, generator=g) * 255)
        elif name == "z":
            out.append(torch.randn(n, model.latent_dim, generator=g))
        elif name == "y":
            out.append(nn.functional.one_hot(torch.arange(n) % model.num_classes, model.num_classes).float())
        else:
            raise ConfigError(f"{meta['model']}: no example for an export input named '{name}'")
    return tuple(out)


def check_inputs(weights: str | os.PathLike, ckpt: dict[str, Any], spec: Any, model: nn.Module,
                 meta: dict[str, Any], n: int) -> tuple[Tensor, ...]:
    """What the check runs: ``n`` images of the run's test split (or validation split) for image inputs,
    else draws from the prior (:func:`example_inputs` with the run's seed)."""
    if model.export_inputs[0] != "images":
        return example_inputs(model, meta, n, seed=int(ckpt.get("config", {}).get("seed", 0)) + 1)
    from dcvkit.config import from_dict

    cfg = from_dict(spec.config, ckpt.get("config", {}), where=str(weights))
    splits = spec.load_splits(cfg)
    data = splits.test if splits.test is not None else splits.val
    if data is None or not hasattr(data, "images"):
        raise DataError(f"{weights}: the run's data has no in-memory test or validation split to check the export on")
    return (data.images[:n].float(),)


def export(weights: str | os.PathLike, fmt: str = "onnx", out: str | os.PathLike | None = None,
           check: int = 16, atol: float = 1e-3) -> dict[str, Any]:
    """Export a run's best.pt (or a .pt); returns the report (also written next to the file as JSON)."""
    from dcvkit.models.normalise import Normaliser

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    missing = missing_dependency()
    if missing:
        raise ConfigError(f"dcv export needs {missing}: pip install 'dcvkit[export]'")
    ckpt = load_checkpoint(weights, map_location="cpu")
    spec, model, meta = _exportable(weights, ckpt, fmt)
    inputs, outputs = tuple(model.export_inputs), tuple(model.export_outputs)
    normaliser = Normaliser.from_meta(meta) if inputs[0] == "images" else None
    reference = ExportGraph(model, normaliser).eval()
    fused = copy.deepcopy(model)
    if hasattr(fused, "fuse"):  # the exported copy gets its batch norms folded; the reference keeps them
        fused.fuse()
    exported = ExportGraph(fused, normaliser).eval()
    src = Path(weights)
    run_dir = src if src.is_dir() else src.parent
    out = Path(out) if out else run_dir / f"{meta['model']}.onnx"
    example = example_inputs(model, meta, 2)
    write_onnx(exported, example, out, inputs, outputs)
    report: dict[str, Any] = {"file": str(out), "model": meta["model"], "task": spec.name,
                              "inputs": {n: f"float32 (N, {', '.join(map(str, x.shape[1:]))})"
                                         for n, x in zip(inputs, example)},
                              "outputs": list(outputs), "classes": meta["classes"]}
    if inputs[0] == "images":
        report["input"] = f"images float32 (N, {', '.join(map(str, example[0].shape[1:]))}) pixels 0..255"
    else:
        report["input"] = ", ".join(f"{n} float32 (N, {x.shape[1]})" for n, x in zip(inputs, example))
    if check:
        report.update(compare(out, reference, check_inputs(weights, ckpt, spec, model, meta, check), meta, atol))
    write_json(out.with_suffix(".json"), report)
    return report


def write_onnx(graph: nn.Module, example: tuple[Tensor, ...], out: Path, inputs: tuple[str, ...],
               outputs: tuple[str, ...]) -> Path:
    """``graph`` traced on ``example`` into an ONNX file, atomically, with a symbolic batch size."""
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        graph(*example)  # fills the model's per-grid caches before tracing, so they export as constants
    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():  # the exporter prints its progress
        torch.onnx.export(graph, example, str(tmp), dynamo=True, external_data=False, input_names=list(inputs),
                          output_names=list(outputs), dynamic_shapes=(tuple({0: batch} for _ in example),))
    os.replace(tmp, out)
    return out


def onnx_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An onnxruntime session of the file on the CPU (``threads``: its intra-op threads, default onnxruntime's)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_session(session: Any, inputs: dict[str, Tensor]) -> list[Tensor]:
    """The session's outputs for ``inputs`` (name -> tensor, fed as contiguous float32)."""
    import numpy as np

    feed = {k: np.ascontiguousarray(v.float().numpy()) for k, v in inputs.items()}
    return [torch.from_numpy(a) for a in session.run(None, feed)]


def run_onnx(path: str | os.PathLike, inputs: dict[str, Tensor], threads: int | None = None) -> list[Tensor]:
    """The file's outputs for ``inputs`` (name -> tensor), by onnxruntime on the CPU."""
    return run_session(onnx_session(path, threads), inputs)


def compare(path: Path, reference: nn.Module, inputs: tuple[Tensor, ...], meta: dict[str, Any], atol: float
            ) -> dict[str, Any]:
    """Run the ONNX file with onnxruntime and the PyTorch graph on ``inputs``; differences and a verdict."""
    names = reference.model.export_inputs
    outputs = tuple(reference.model.export_outputs)
    got = run_onnx(path, dict(zip(names, inputs)))
    with torch.no_grad():
        want = reference(*inputs)
    want = list(want) if isinstance(want, tuple) else [want]
    diffs = {name: float((g - r).abs().max()) for name, g, r in zip(outputs, got, want)}
    report: dict[str, Any] = {"check_images": len(inputs[0]), "max_abs_diff": diffs}
    if outputs == ("boxes", "scores"):
        report.update(_same_detections(got, want, meta, tuple(inputs[0].shape[-2:]), atol))
        report["ok"] = report["same_detections"]
    elif outputs == ("probs",):
        report["same_top1"] = bool((got[0].argmax(1) == want[0].argmax(1)).all())
        report["ok"] = report["same_top1"] and diffs["probs"] <= atol
    else:  # pixels: the same image to within half a grey level
        report["ok"] = all(d <= 0.5 for d in diffs.values())
    return report


def _same_detections(got: list[Tensor], want: list[Tensor], meta: dict[str, Any], size: tuple[int, int],
                     atol: float) -> dict[str, Any]:
    """The boxes after the run's post-processing, from both runtimes: the same classes, boxes within ``atol``."""
    from dcvkit.models.detect.postprocess import PostProcess

    post = PostProcess(**meta["post"])
    same, n_boxes, box_diff = True, 0, 0.0
    for gb, gs, rb, rs in zip(got[0], got[1], want[0], want[1]):
        a, b = post(gb, gs, size), post(rb, rs, size)
        n_boxes += len(b)
        if len(a) != len(b) or not torch.equal(a.labels, b.labels):
            same = False
            continue
        if len(a):
            box_diff = max(box_diff, float((a.boxes - b.boxes).abs().max()))
    return {"detections": n_boxes, "same_detections": same and box_diff <= atol, "max_box_diff_px": box_diff}


class OnnxDetector:
    """A detector exported by :func:`export`, run by onnxruntime behind the face
    :func:`dcvkit.tasks.detect.detect_images` uses (``detect``, ``parameters``), so ``dcv bench detect`` can time
    the same weights in both runtimes side by side. The graph normalises the pixels itself: use it with
    :func:`pixel_meta`."""

    proposal_method = "none"
    needs_proposals = False

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.session = onnx_session(path, threads)
        self._device = torch.zeros(0)

    def parameters(self):
        yield self._device  # detect_images asks the first parameter for the device: the CPU

    def detect(self, images: Tensor, proposals=None, post=None):
        from dcvkit.models.detect.postprocess import PostProcess

        post = post or PostProcess()
        boxes, scores = run_session(self.session, {"images": images})
        size = (images.shape[-2], images.shape[-1])
        return [post(b, s, size) for b, s in zip(boxes, scores)]


def pixel_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` whose normalisation is the identity (the ONNX graph normalises): mean 0, std 1/255."""
    c = len(meta["mean"])
    return {k: v for k, v in meta.items() if k != "augment"} | {"mean": [0.0] * c, "std": [1.0 / 255] * c}


__all__ = ["export", "compare", "ExportGraph", "FORMATS", "OnnxDetector", "pixel_meta", "missing_dependency",
           "write_onnx", "onnx_session", "run_session", "run_onnx", "example_inputs"]
