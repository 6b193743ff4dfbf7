"""``dcv classify train|val|predict``."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_evaluation, add_images, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = "Image classification: train a model, evaluate it, predict classes."
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("classify"), "train a classifier", report=report_train, description=(
        "Train a classifier on a named dataset or an image folder. Writes runs/classify/<name>: config.yaml, "
        "best.pt, last.pt, metrics.csv, tensorboard/, curves.png, confusion_matrix.png, results.json.\n"
        "example: dcv classify train --model cnn --epochs 12 --scheduler cosine --patience 3"))

    v = modes.add_parser("val", help="evaluate a trained classifier on a split", formatter_class=RAW,
                         description="Accuracy, top-5, per-class precision/recall/F1 and the confusion matrix.\n"
                                     "example: dcv classify val runs/classify/exp")
    add_evaluation(v, "folder to write results.json and confusion_matrix.png into",
                   data="dataset name or folder (default: the one the model was trained on)")
    v.add_argument("--data-dir", help="folder holding the named dataset's files")
    v.set_defaults(func=cmd_val)

    pr = modes.add_parser("predict", help="top-k classes of image files", formatter_class=RAW,
                          description="example: dcv classify predict runs/classify/exp shoe.png bag.jpg --topk 3")
    add_weights(pr)
    add_images(pr, what="image files (converted and resized to the model's input)")
    pr.add_argument("--topk", type=int, default=5, help="how many classes to show (default: 5)")
    add_device(pr)
    pr.add_argument("--save", metavar="FILE.json", help="also write the predictions as JSON")
    pr.set_defaults(func=cmd_predict)


def report_train(result) -> None:
    from dcvkit.cli.output import out

    line = fit_line(result)
    if result.test:
        line += f"; test accuracy {result.test['accuracy']:.4f}"
    out.print(f"{line}\nrun directory: {result.run_dir}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table

    r = get_task("classify").evaluate(args.weights, data=args.data, data_dir=args.data_dir, split=args.split,
                                      device=args.device, out_dir=args.out)
    print_table(r["per_class"], title=f"{args.split} split, {r['images']:,} images")
    out.print(f"accuracy {r['accuracy']:.4f}  top-5 {r['top5_accuracy']:.4f}")
    if args.out:
        out.print(f"wrote {args.out}/results.json and confusion_matrix.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import err, out
    from dcvkit.io import write_json

    preds = get_task("classify").predict(args.weights, args.images, topk=args.topk, device=args.device)
    for p in preds:
        if p.resized_from:
            err.print(f"note: {p.path} is {p.resized_from[0]}x{p.resized_from[1]}; resized to the model's input")
        out.print(f"{p.path}: " + ", ".join(f"{c} {prob:.3f}" for c, prob in p.top))
    if args.save:
        write_json(args.save, [{"image": p.path, "top": [{"class": c, "probability": v} for c, v in p.top]}
                               for p in preds])
    return 0


__all__ = ["build"]
