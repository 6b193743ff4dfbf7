"""``dcv augment preview``."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import add_images, add_run_dir, add_seed


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("Data augmentation with Keras ImageDataGenerator's options (docs/augmentation.md). Training "
                     "commands take the same config: dcv classify train --augment aug.yaml")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    v = modes.add_parser("preview", help="a PNG grid of images and augmented versions of them", description=(
        "Writes runs/augment/<name>/preview.png: each image, then --n augmented versions of it, with the "
        "first image's --mask and --box drawn where the transform moved them.\n"
        "examples:\n"
        "  dcv augment preview --config aug.yaml photo.jpg --box 30,40,120,160 --mask photo_mask.png\n"
        "  dcv augment preview --config 'rotation_range=20, zoom_range=0.2, horizontal_flip=true'\n"
        "    (no IMAGE: the first --count training images of --data)"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images(v, nargs="*", what="image files (default: images from --data)")
    v.add_argument("--config", required=True, metavar="AUG",
                   help="augmentation options: a YAML file, or inline 'key=value, key=[a, b]'")
    v.add_argument("--n", type=int, default=8, help="augmented versions per image (default: 8)")
    v.add_argument("--box", action="append", default=[], metavar="X1,Y1,X2,Y2",
                   help="a bounding box of the first image, in pixels (repeat for more)")
    v.add_argument("--mask", metavar="MASK.png", help="a label map (or 0/255 mask) of the first image")
    v.add_argument("--data", default="fashion-mnist", help="dataset to take images from when no IMAGE is given")
    v.add_argument("--data-dir", help="folder holding the named dataset's files")
    v.add_argument("--count", type=int, default=4, help="images taken from --data (default: 4)")
    add_seed(v)
    add_run_dir(v)
    v.set_defaults(func=cmd_preview)


def cmd_preview(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from dcvkit.augment import parse_augment
    from dcvkit.augment.preview import parse_box, preview, read_mask
    from dcvkit.cli.output import out
    from dcvkit.errors import ConfigError, DataError
    from dcvkit.io import new_run_dir, write_yaml

    cfg = parse_augment(args.config)
    if cfg is None:
        raise ConfigError("--config: give a YAML file or inline options like 'rotation_range=10'")
    if args.images:
        from dcvkit.data.folders import decode, probe

        images = []
        for p in map(Path, args.images):
            if not p.is_file():
                raise DataError(f"{p}: no such image file")
            channels, _ = probe(p)
            images.append(torch.from_numpy(decode(p, channels, None)))
    else:
        if args.mask or args.box:
            raise ConfigError("--mask and --box describe the first IMAGE; give the image file too")
        from dcvkit.data import load_dataset

        splits = load_dataset(args.data, data_dir=args.data_dir, val_split=0.0, seed=args.seed)
        images = list(splits.train.images[: max(1, args.count)])
    size = tuple(images[0].shape[-2:])
    mask = read_mask(args.mask, size) if args.mask else None
    boxes = torch.tensor([parse_box(b) for b in args.box]) if args.box else None
    run = new_run_dir(Path(args.project) / "augment", args.name)
    write_yaml(run / "augment.yaml", cfg.changed())
    path = preview(cfg, images, run / "preview.png", n=args.n, seed=args.seed, mask=mask, boxes=boxes)
    out.print(f"wrote {path}")
    return 0
