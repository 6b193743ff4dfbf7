"""``dcv export RUN --format onnx``: a classifier or YOLO run as an ONNX file, checked with onnxruntime."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained classifier or YOLO to ONNX (checked with onnxruntime)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Writes <run>/<model>.onnx: input 'images' float32 (N, C, H, W) pixels 0..255 at the training size "
        "(normalisation inside); outputs 'probs' (classifiers) or 'boxes' (N, K, 4) x1 y1 x2 y2 and 'scores' "
        "(N, K, classes) before NMS (yolo, yolo_v1). Then runs the file with onnxruntime and the PyTorch model on "
        "--check test images and compares them (raw outputs and, for detectors, the boxes after the run's "
        "post-processing); the report goes to <model>.json and the exit code is 1 when they differ.\n"
        "examples:\n  dcv export runs/detect/exp3 --format onnx\n"
        "  dcv export runs/classify/exp --out cnn.onnx --check 64"))
    p.add_argument("weights", help="run directory or checkpoint (.pt)")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="output format (default: onnx)")
    p.add_argument("--out", help="output file (default: <run>/<model>.onnx)")
    p.add_argument("--check", type=int, default=16, help="test images to compare on (0: no check; default 16)")
    p.add_argument("--atol", type=float, default=1e-3, help="largest allowed difference (probabilities; box pixels)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.tasks.export import export

    r = export(args.weights, args.format, args.out, check=args.check, atol=args.atol)
    out.print(f"wrote {r['file']} ({r['model']}: {r['input']} -> {', '.join(r['outputs'])})")
    if not args.check:
        return 0
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in r["max_abs_diff"].items())
    if "detections" in r:
        out.print(f"onnxruntime vs PyTorch on {r['check_images']} test images: max |difference| {diffs}; "
                  f"{r['detections']} detections, same boxes and classes: {r['same_detections']} "
                  f"(max box difference {r['max_box_diff_px']:.2g} px)")
    else:
        out.print(f"onnxruntime vs PyTorch on {r['check_images']} test images: max |difference| {diffs}; "
                  f"same top-1 class: {r['same_top1']}")
    return 0 if r["ok"] else 1
