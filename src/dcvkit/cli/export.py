"""``dcv export RUN --format onnx``: a classifier or YOLO run as an ONNX file, checked with onnxruntime."""

from __future__ import annotations

import argparse

from dcvkit.choices import EXPORT_FORMATS
from dcvkit.cli.common import add_weights


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Writes <run>/<model>.onnx: input 'images' float32 (N, C, H, W) pixels 0..255 at the training size "
        "(the run's normalisation inside); outputs 'probs' (classifiers) or 'boxes' (N, K, 4) x1 y1 x2 y2 and "
        "'scores' (N, K, classes) before NMS (yolo, yolo_v1); a generative run: input 'z' (N, latent) [and 'y' "
        "(N, classes) for a conditional model], output 'images' pixels 0..255. Then runs the file with "
        "onnxruntime and the PyTorch model on --check test images (latent draws for generators) and compares "
        "them (raw outputs and the top-1 class, the boxes after the run's post-processing, or the pixels); the "
        "report goes to <model>.json and the exit code is 1 when they differ.\n"
        "examples:\n  dcv export runs/detect/exp3 --format onnx\n"
        "  dcv export runs/classify/exp --out cnn.onnx --check 64")
    add_weights(p)
    p.add_argument("--format", default=EXPORT_FORMATS[0], choices=EXPORT_FORMATS,
                   help=f"output format (default: {EXPORT_FORMATS[0]})")
    p.add_argument("--out", help="output file (default: <run>/<model>.onnx)")
    p.add_argument("--check", type=int, default=16, help="test images to compare on (0: no check; default 16)")
    p.add_argument("--atol", type=float, default=1e-3, help="largest allowed difference (probabilities; box pixels)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.export import export

    r = export(args.weights, args.format, args.out, check=args.check, atol=args.atol)
    out.print(f"wrote {r['file']} ({r['model']}: {r['input']} -> {', '.join(r['outputs'])})")
    if not args.check:
        return 0
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in r["max_abs_diff"].items())
    what = "test images" if "images" in r["inputs"] else "draws from the prior"
    line = f"onnxruntime vs PyTorch on {r['check_images']} {what}: max |difference| {diffs}"
    if "detections" in r:
        line += (f"; {r['detections']} detections, same boxes and classes: {r['same_detections']} "
                 f"(max box difference {r['max_box_diff_px']:.2g} px)")
    elif "same_top1" in r:
        line += f"; same top-1 class: {r['same_top1']}"
    else:
        line += f"; the same images to half a grey level: {r['ok']}"
    out.print(line)
    return 0 if r["ok"] else 1
