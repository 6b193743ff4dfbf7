"""``dcv scenegraph train|val|predict``: the objects of an image and the relations between them, Recall@K."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_evaluation, add_images, add_out, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("Scene-graph prediction: subject-predicate-object triples between the objects of an image, "
                     "scored by Recall@K (graph-constrained), ngR@K, mean recall over predicates (mR@K) and "
                     "zero-shot recall, in three protocols: PredCls (true boxes and classes), SGCls (true boxes), "
                     "SGDet (a dcv detect run's boxes). Models (dcv models --task scenegraph): frequency (the "
                     "predicate prior of the two classes), geometry (+ box-pair geometry), visual (+ subject, object "
                     "and union-box RoI features).")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("scenegraph"), "train a scene-graph model", report=report_train, description=(
        "Train a scene-graph model on graph scenes (--data scenes, the default: FashionScenes with 11 predicates, "
        "geometric, depth and appearance; dcv data scenegraphs writes them) or on a Visual-Genome-like "
        "scene_graphs.json with any classes and predicates. Every model starts from the training set's predicate "
        "counts per class pair (Motifs' frequency bias). Give --detector RUN (a dcv detect run on the same classes) "
        "for SGDet in the test results. Writes runs/scenegraph/<name>: config.yaml, best.pt, last.pt, "
        "metrics.csv, tensorboard/, curves.png, results.json (R@20/50/100, ngR@K, mR@K, zsR@K, per-predicate "
        "recall, ms per image per protocol), graphs.png, per_predicate.png.\n"
        "examples:\n  dcv scenegraph train --detector runs/detect/yolo\n"
        "  dcv scenegraph train --model geometry --name geometry\n"
        "  dcv scenegraph train --data vg/scene_graphs.json --test-data vg/test.json --img-size 256"))
    v = modes.add_parser("val", help="R@K, ngR@K, mR@K, zero-shot recall per protocol", formatter_class=RAW,
                         description=(
        "PredCls and SGCls on the run's test split (or --data, a VG-like .json), SGDet too with --detector: R@K "
        "with the graph constraint (one predicate per pair), ngR@K without, mR@K (mean over predicates), zsR@K "
        "(triples never seen in training), each predicate's recall, milliseconds per image.\n"
        "example: dcv scenegraph val runs/scenegraph/exp --detector runs/detect/yolo --out runs/scenegraph/exp/val"))
    add_evaluation(v, "folder to write results.json, graphs.png and per_predicate.png into",
                   data="scene graphs to evaluate on (a Visual-Genome-like .json; default: the run's own test split)")
    add_detector(v, "a dcv detect run (same classes and image size) for SGDet (default: PredCls and SGCls only)")
    v.set_defaults(func=cmd_val)
    pr = modes.add_parser("predict", help="scene graphs of image files: picture + triples JSON", formatter_class=RAW,
                          description=(
        "The detector run finds the objects; the model relates every pair. Writes <stem>_graph.png per image (the "
        "boxes on the original image, the graph beside it) and triples.json (file, subject, predicate, object with "
        "classes, boxes in the original image's pixels and scores). Images of any size are letterboxed to the "
        "training size and the boxes mapped back.\n"
        "example: dcv scenegraph predict runs/scenegraph/exp room.png --detector runs/detect/yolo --out graphs/"))
    add_weights(pr)
    add_images(pr)
    add_detector(pr, "a dcv detect run (same classes and image size): it finds the objects (required)")
    add_out(pr, "folder for the outputs", default="graphs")
    pr.add_argument("--top", type=int, default=10, help="triples per image, best first (default 10)")
    pr.add_argument("--min-score", type=float, default=0.05, help="leave out triples scoring below this (default 0.05)")
    add_device(pr)
    pr.set_defaults(func=cmd_predict)


def add_detector(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--detector", metavar="RUN", help=what)


def report_train(result) -> None:
    from dcvkit.cli.output import out

    line, t = fit_line(result), result.test
    if t:
        parts = [f"{name} R@50 {r['R@50']:.4f} mR@50 {r['mR@50']:.4f}" for name, r in t["protocols"].items()]
        line += "; test " + ", ".join(parts)
    out.print(f"{line}\nrun directory: {result.run_dir}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table

    r = get_task("scenegraph").evaluate(args.weights, data=args.data, split=args.split, device=args.device,
                                        out_dir=args.out, detector=args.detector)
    out.print(f"{r['model']} on the {args.split} split: {r['images']:,} images, {r['objects']:,} objects, "
              f"{r['triples']:,} triples, {len(r['predicates'])} predicates")
    print_table([{"protocol": name, **{k: f"{p[k]:.3f}" for k in ("R@20", "R@50", "R@100", "ngR@50", "mR@50")},
                  "zsR@50": "-" if p.get("zsR@50") is None else f"{p['zsR@50']:.3f}",
                  "ms/image": f"{p['ms_per_image']:.2f}"} for name, p in r["protocols"].items()])
    first = next(iter(r["protocols"].values()))["per_predicate"]
    print_table([{"predicate": row["predicate"], "kind": row["kind"] or "-", "triples": row["triples"],
                  **{name: "-" if p["per_predicate"][q]["R@50"] is None else f"{p['per_predicate'][q]['R@50']:.3f}"
                     for name, p in r["protocols"].items()}} for q, row in enumerate(first)])
    if "warning" in r:
        out.print(f"warning: {r['warning']}")
    if args.out:
        out.print(f"wrote {args.out}/results.json, graphs.png and per_predicate.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    rows = get_task("scenegraph").predict(args.weights, args.images, args.out, detector=args.detector,
                                          device=args.device, top=args.top, min_score=args.min_score)
    for path in args.images:
        mine = [r for r in rows if r["file"] == str(path)]
        best = f": {mine[0]['subject']['class']} {mine[0]['predicate']} {mine[0]['object']['class']}" if mine else ""
        out.print(f"{path}: {len(mine)} triples{best}")
    out.print(f"wrote {args.out}/triples.json and a _graph.png per image")
    return 0


__all__ = ["build"]
