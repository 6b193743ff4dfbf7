"""``dcv explain saliency`` and ``dcv explain features``."""

from __future__ import annotations

import argparse

from dcvkit.choices import SALIENCY_SCORES
from dcvkit.cli.common import add_device, add_field, add_images, add_seed, add_weights
from dcvkit.config import RunConfig
from dcvkit.explain.perturbation import DEFAULT_MAX_MEMORY_MB


def _common(p: argparse.ArgumentParser) -> None:
    add_weights(p, "a classification run directory or checkpoint")
    add_images(p, nargs="*", what="image files (converted and resized to the model's input, with a notice); "
                                  "default: --index images of the run's test split")
    p.add_argument("--index", default="0", help="test-split images to use when no IMAGE is given: '0', '0,5,9' "
                                                "(default: 0)")
    add_device(p)
    add_seed(p)
    p.add_argument("--out", metavar="DIR", help="folder in which a new <name> folder is made for the pictures "
                                                "(default: RUN/explain, beside the run explained)")
    add_field(p, RunConfig, "name")


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("See what a trained classifier looks at: saliency maps (perturbation, gradient, SmoothGrad, "
                     "occlusion, Grad-CAM) and feature maps / first-layer filters.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    s = modes.add_parser("saliency", help="saliency maps: PNG overlays and raw .npy maps", description=(
        "Writes RUN/explain/<name>/<image>.png (the image with the predicted class and probability, then a "
        "heat map per method) and <image>_<method>.npy (raw (C, H, W) d p / d pixel), and saliency.json.\n"
        "methods:\n"
        "  perturbation  the course's algorithm: every pixel value moved by +-deltas/255, D = dp/dpixel "
        "averaged;\n"
        "                exact, batched, and incremental (only the windows a pixel reaches) for plain CNNs\n"
        "  gradient      dp/dpixel by autograd (the perturbation method's limit for small steps)\n"
        "  smoothgrad    the gradient averaged over noisy copies\n"
        "  occlusion     the drop in p when a sliding patch is greyed out (coarse, fast)\n"
        "  gradcam       Grad-CAM on the last convolutional block\n"
        "examples:\n"
        "  dcv explain saliency runs/quickstart/exp/cnn --index 0,1,2\n"
        "  dcv explain saliency runs/classify/exp photo.jpg --method all --target dog\n"
        "  dcv explain saliency runs/classify/exp photo.jpg --method perturbation --deltas 1,2 --max-memory 2048"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(s)
    s.add_argument("--method", default="perturbation,gradient,gradcam",
                   help="comma-separated methods, or 'all' (default: perturbation,gradient,gradcam)")
    s.add_argument("--target", help="class to explain, by name or index (default: the predicted class)")
    s.add_argument("--deltas", default="1,2,4", help="perturbation steps in 1/255 units, each used with both "
                                                     "signs (default: 1,2,4)")
    s.add_argument("--score", default="logprob", choices=SALIENCY_SCORES,
                   help="what the maps differentiate: logprob (log p of the class: a confident p = 1.000 still has a "
                        "map; default), logit, or prob (the course's Δprobability, which vanishes when the softmax "
                        "saturates); a map that is all zero or below numerical noise is reported as such")
    s.add_argument("--engine", default="auto", choices=("auto", "incremental", "batched"),
                   help="perturbation engine: incremental for plain CNNs, batched for any model (default: auto)")
    s.add_argument("--batch-size", type=int, help="perturbed copies per forward pass (default: from --max-memory)")
    s.add_argument("--max-memory", type=float, default=DEFAULT_MAX_MEMORY_MB,
                   help=f"memory budget in MB for one batch of copies (default: {DEFAULT_MAX_MEMORY_MB})")
    s.add_argument("--aggregate", default="mean", choices=("mean", "max"),
                   help="one value per pixel: mean or max of |saliency| over channels (default: mean)")
    s.add_argument("--samples", type=int, default=25, help="SmoothGrad: noisy copies (default: 25)")
    s.add_argument("--noise", type=float, default=0.15, help="SmoothGrad: noise std, pixel units (default: 0.15)")
    s.add_argument("--patch", type=int, default=4, help="occlusion: patch size in pixels (default: 4)")
    s.add_argument("--stride", type=int, default=2, help="occlusion: patch stride (default: 2)")
    s.add_argument("--layer", help="Grad-CAM layer (default: the last feature layer)")
    s.set_defaults(func=cmd_saliency)

    f = modes.add_parser("features", help="feature-map grids and first-layer filters", description=(
        "Writes RUN/explain/<name>/features_<layer>.png (every channel of each layer's output for the image) "
        "and filters.png (the first convolution's filters).\n"
        "examples:\n"
        "  dcv explain features runs/quickstart/exp/cnn --list-layers\n"
        "  dcv explain features runs/classify/exp photo.png --layers blocks.0,blocks.1"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(f)
    f.add_argument("--layers", help="comma-separated layer names (default: the model's feature layers)")
    f.add_argument("--list-layers", action="store_true", help="print the layer names and exit")
    f.add_argument("--no-filters", dest="filters", action="store_false", help="skip filters.png")
    f.set_defaults(func=cmd_features)


def _images(args: argparse.Namespace, ex) -> list:
    from pathlib import Path

    from dcvkit.errors import ConfigError
    from dcvkit.explain.model import dataset_images, read_images

    if args.images:
        return list(zip(read_images(args.images, ex.in_chans, ex.img_size), [Path(p).stem for p in args.images]))
    try:
        indices = [int(i) for i in str(args.index).split(",") if i.strip()]
    except ValueError:
        raise ConfigError(f"--index {args.index}: give image numbers like 0 or 0,5,9") from None
    return [(img, f"test{i}_{label}") for i, (img, label) in zip(indices, dataset_images(args.weights, indices))]


def output_dir(args: argparse.Namespace):
    """A new ``<name>`` folder (never an old one overwritten) under ``--out``, else under ``explain/`` beside the
    run explained (the run directory, or the folder holding the checkpoint); a run folder that cannot be
    written to (a shared, read-only run) falls back to ./runs/explain, saying why."""
    import os
    from pathlib import Path

    from dcvkit.cli.output import err
    from dcvkit.io import new_run_dir

    if args.out:
        return new_run_dir(args.out, args.name)
    weights = Path(args.weights)
    run = weights if weights.is_dir() else weights.parent
    if os.access(run, os.W_OK):
        return new_run_dir(run / "explain", args.name)
    fallback = new_run_dir(Path("runs") / "explain", args.name)
    err.print(f"note: {run} cannot be written to, so the explanation goes to {fallback} (choose with --out)")
    return fallback


def _setup(args: argparse.Namespace):
    import torch

    from dcvkit.explain.model import load_explainable

    torch.manual_seed(args.seed)
    return load_explainable(args.weights, args.device)


def cmd_saliency(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.errors import ConfigError
    from dcvkit.explain.report import explain_saliency
    from dcvkit.explain.saliency import METHODS
    from dcvkit.io import write_yaml

    methods = list(METHODS) if args.method == "all" else [m.strip() for m in args.method.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ConfigError(f"--method {args.method}: choose from {', '.join(METHODS)} or all")
    try:
        deltas = [float(d) for d in args.deltas.split(",") if d.strip()]
    except ValueError:
        raise ConfigError(f"--deltas {args.deltas}: give step sizes in 1/255 units, e.g. 1,2,4") from None
    ex = _setup(args)
    images = _images(args, ex)
    run = output_dir(args)
    write_yaml(run / "config.yaml", {k: v for k, v in vars(args).items() if k != "func"})
    explain_saliency(ex, images, methods, run, target=args.target, log=out.print, deltas=deltas,
                     batch_size=args.batch_size, max_memory_mb=args.max_memory, engine=args.engine,
                     samples=args.samples, noise=args.noise, patch=args.patch, stride=args.stride,
                     layer=args.layer, aggregate_by=args.aggregate, seed=args.seed, score=args.score)
    out.print(f"wrote {run}/ (PNG overlays, .npy maps, saliency.json)")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.explain.features import layer_names
    from dcvkit.explain.report import explain_features
    from dcvkit.io import write_yaml

    ex = _setup(args)
    if args.list_layers:
        for name, kind, role in layer_names(ex.model):
            out.print(f"{name:<28} {kind:<20} {role}")
        return 0
    (image, stem), *_ = _images(args, ex)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    run = output_dir(args)
    write_yaml(run / "config.yaml", {k: v for k, v in vars(args).items() if k != "func"})
    for path in explain_features(ex, image, run, layers, args.filters, stem):
        out.print(f"wrote {path}")
    return 0
