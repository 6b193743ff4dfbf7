"""``dcv classify train|val|predict``."""

from __future__ import annotations

import argparse

from dcvkit.cli.launch import launched
from dcvkit.cli.output import err, out, print_table
from dcvkit.config import add_config_arguments, resolve


def register(sub: argparse._SubParsersAction) -> None:
    from dcvkit.tasks.classify import ClassifyConfig

    p = sub.add_parser("classify", help="image classification: train | val | predict",
                       description="Image classification: train a model, evaluate it, predict classes.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)

    t = modes.add_parser("train", help="train a classifier", description=(
        "Train a classifier on a named dataset or an image folder. Writes runs/classify/<name>: config.yaml, "
        "best.pt, last.pt, metrics.csv, tensorboard/, curves.png, confusion_matrix.png, results.json.\n"
        "example: dcv classify train --model cnn --epochs 12 --scheduler cosine --patience 3"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(t, ClassifyConfig)
    t.set_defaults(func=cmd_train)

    v = modes.add_parser("val", help="evaluate a trained classifier on a split",
                         description="Accuracy, top-5, per-class precision/recall/F1 and the confusion matrix.\n"
                                     "example: dcv classify val runs/classify/exp",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("weights", help="run directory or checkpoint (.pt)")
    v.add_argument("--data", help="dataset name or folder (default: the one the model was trained on)")
    v.add_argument("--data-dir", help="folder holding the named dataset's files")
    v.add_argument("--split", default="test", choices=("test", "val", "train"), help="which split (default: test)")
    v.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    v.add_argument("--out", help="folder to write results.json and confusion_matrix.png into")
    v.set_defaults(func=cmd_val)

    pr = modes.add_parser("predict", help="top-k classes of image files",
                          description="example: dcv classify predict runs/classify/exp shoe.png bag.jpg --topk 3",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("weights", help="run directory or checkpoint (.pt)")
    pr.add_argument("images", nargs="+", help="image files (converted and resized to the model's input)")
    pr.add_argument("--topk", type=int, default=5, help="how many classes to show (default: 5)")
    pr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    pr.add_argument("--save", metavar="FILE.json", help="also write the predictions as JSON")
    pr.set_defaults(func=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    from dcvkit.tasks.classify import ClassifyConfig, train

    cfg = resolve(ClassifyConfig, args)
    if (code := launched(cfg, args)) is not None:
        return code
    result = train(cfg)
    fit = result.fit
    line = f"done: {fit.epochs_run} epochs in {fit.seconds:.0f}s"
    if fit.best is not None:
        line += f"; best {cfg.monitor} {fit.best:.4f} (epoch {fit.best_epoch})"
    if result.test:
        line += f"; test accuracy {result.test['accuracy']:.4f}"
    out.print(f"{line}\nrun directory: {result.run_dir}")
    return 0


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.tasks.classify import evaluate

    r = evaluate(args.weights, data=args.data, data_dir=args.data_dir, split=args.split, device=args.device,
                 out_dir=args.out)
    print_table(r["per_class"], title=f"{args.split} split, {r['images']:,} images")
    out.print(f"accuracy {r['accuracy']:.4f}  top-5 {r['top5_accuracy']:.4f}")
    if args.out:
        out.print(f"wrote {args.out}/results.json and confusion_matrix.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.io import write_json
    from dcvkit.tasks.classify import predict

    preds = predict(args.weights, args.images, topk=args.topk, device=args.device)
    for p in preds:
        if p.resized_from:
            err.print(f"note: {p.path} is {p.resized_from[0]}x{p.resized_from[1]}; resized to the model's input")
        out.print(f"{p.path}: " + ", ".join(f"{c} {prob:.3f}" for c, prob in p.top))
    if args.save:
        write_json(args.save, [{"image": p.path, "top": [{"class": c, "probability": v} for c, v in p.top]}
                               for p in preds])
    return 0


__all__ = ["register"]
