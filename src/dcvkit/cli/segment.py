"""``dcv segment train|val|predict`` and ``dcv autoencoder train``."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_evaluation, add_images, add_out, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    if command == "autoencoder":
        return build_autoencoder(p)
    p.description = ("Semantic segmentation (a class per pixel): U-Net, the skip-less autoencoder, the course's small "
                     "U-Net, Dice and IoU.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("segment"), "train a segmentation model", report=report_train, description=(
        "Train a segmentation model on FashionScenes (--data scenes, the default: Fashion-MNIST items on textured "
        "backgrounds, 128x128, 10 classes + background) or on a folder of images/ + masks/ (PNG class ids, "
        "optional classes.yaml). Loss: cross-entropy + Dice by default. Writes runs/segment/<name>: config.yaml, "
        "best.pt, last.pt, metrics.csv (val_dice, val_iou, val_pixel_acc), tensorboard/, curves.png, "
        "predictions.png, results.json (per-class Dice and IoU on the test scenes).\n"
        "examples:\n  dcv segment train                                  # unet on FashionScenes\n"
        "  dcv segment train --model unet --upsample transpose --depth 3 --base 32\n"
        "  dcv segment train --model unet --encoder resnet18  # a registry ResNet as the encoder\n"
        "  dcv segment train --data my_data/ --augment 'rotation_range=10, horizontal_flip=true'\n"
        "  dcv segment train --model conv_autoencoder --target image --data fashion-mnist   # reconstruction"))

    v = modes.add_parser("val", help="per-class Dice and IoU of a trained model", formatter_class=RAW,
                         description="Per-class Dice and IoU, their means over the foreground classes and pixel "
                                     "accuracy on a split (an autoencoder: MSE and PSNR).\n"
                                     "example: dcv segment val runs/segment/exp")
    add_evaluation(v, "folder to write results.json and predictions.png into",
                   data="dataset (default: the one the model was trained on)")
    v.set_defaults(func=cmd_val)

    pr = modes.add_parser("predict", help="colour-coded masks and overlays for image files", formatter_class=RAW,
                          description="Writes <stem>_mask.png (palette PNG: the class ids, coloured) and "
                                      "<stem>_overlay.png per image, any size (an autoencoder: "
                                      "<stem>_reconstruction.png).\n"
                                      "example: dcv segment predict runs/segment/exp scene.png --out masks/")
    add_weights(pr)
    add_images(pr)
    add_out(pr, "folder for the output PNGs", default="predictions")
    pr.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the class colours (default 0.5)")
    add_device(pr)
    pr.set_defaults(func=cmd_predict)


def build_autoencoder(a: argparse.ArgumentParser) -> None:
    a.description = "Convolutional autoencoders: reconstruct the input through a bottleneck."
    modes = a.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("autoencoder"), "train a convolutional autoencoder", report=report_train, description=(
        "Train conv_autoencoder (the U-Net without its skips) to reconstruct its input: Fashion-MNIST by default, "
        "MSE loss. Writes runs/autoencoder/<name> with reconstructions.png (inputs above reconstructions) and "
        "results.json (test MSE, PSNR). The same as dcv segment train --target image.\n"
        "example: dcv autoencoder train --depth 2 --base 16 --epochs 5"))


def report_train(result) -> None:
    """``dcv segment train`` and ``dcv autoencoder train`` (the same task, other defaults)."""
    from dcvkit.cli.output import out

    line, t = fit_line(result), result.test
    if t and "mean_dice" in t:
        line += f"; test mean Dice {t['mean_dice']:.4f}, mean IoU {t['mean_iou']:.4f}"
    elif t:
        line += f"; test MSE {t['mse']:.5f}, PSNR {t['psnr']:.2f} dB"
    out.print(f"{line}\nrun directory: {result.run_dir}")


def print_scores(r: dict, title: str) -> None:
    from dcvkit.cli.output import out, print_table

    if "mean_dice" not in r:
        out.print(f"{title}: MSE {r['mse']:.5f}  PSNR {r['psnr']:.2f} dB")
        return
    rows = [{"class": c["class"], "Dice": c["dice"] if c["dice"] is not None else "-",
             "IoU": c["iou"] if c["iou"] is not None else "-", "pixels": f"{c['pixels']:,}"} for c in r["per_class"]]
    print_table(rows, title=title)
    out.print(f"mean Dice {r['mean_dice']:.4f}  mean IoU {r['mean_iou']:.4f} (foreground classes)  "
              f"pixel accuracy {r['pixel_accuracy']:.4f}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    r = get_task("segment").evaluate(args.weights, data=args.data, split=args.split, device=args.device,
                                     out_dir=args.out)
    print_scores(r, f"{args.split} split, {r['images']:,} images")
    if args.out:
        out.print(f"wrote {args.out}/results.json and predictions.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    for p in get_task("segment").predict(args.weights, args.images, args.out, device=args.device, alpha=args.alpha):
        if p.overlay is None:
            out.print(f"{p.path}: {p.mask}")
            continue
        top = ", ".join(f"{c} {n:,}" for c, n in sorted(p.pixels.items(), key=lambda kv: -kv[1]))
        out.print(f"{p.path}: {p.mask}, {p.overlay} (pixels: {top})")
    return 0


__all__ = ["build", "print_scores"]
