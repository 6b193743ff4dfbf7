"""``dcv data scenes``: write FashionScenes to disk in a standard format; ``dcv data convert``: COCO <-> YOLO <-> VOC."""

from __future__ import annotations

import argparse

from dcvkit.choices import ANNOTATION_FORMATS, SCENE_FORMATS
from dcvkit.cli.common import add_seed, existing


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = "Dataset tools: FashionScenes in the standard formats; conversion between COCO, YOLO and VOC."
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    s = kinds.add_parser("scenes", help="write FashionScenes in a standard format",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "FashionScenes: Fashion-MNIST items (the train split for --split train, the test split for --split test) "
        "scaled, tinted and placed, possibly overlapping, on textured backgrounds, with class masks, instance "
        "masks and boxes. Deterministic in --seed (scene i depends only on the seed and i). Formats:\n"
        "  masks  images/, masks/ (palette PNGs of class ids, 0 = background), instances/, classes.yaml\n"
        "  coco   images/, annotations.json (boxes, RLE instance masks, categories from 1)\n"
        "  yolo   images/, labels/*.txt (class cx cy w h, normalised), data.yaml (Ultralytics)\n"
        "  voc    JPEGImages/, Annotations/*.xml, SegmentationClass/, SegmentationObject/, ImageSets/Main/\n"
        "--photos: scenes at real sizes (default 640x480 JPEGs) on crops of the photographs scikit-image ships, "
        "3 to 24 items each, sides from 12 px to 80%% of the shorter image side; generated and written in worker "
        "processes, never held in memory together (20,000 scenes take ~1.2 GB on disk).\n"
        "example: dcv data scenes --out scenes/train --format coco --n 2000 && "
        "dcv data scenes --out scenes/test --split test --n 500\n"
        "example: dcv data scenes --photos --out real/train --format yolo --n 4000 && "
        "dcv data scenes --photos --out real/test --format yolo --split test --n 300"))
    s.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    s.add_argument("--format", default="masks", choices=SCENE_FORMATS, help="annotation format (default: masks)")
    s.add_argument("--n", type=int, default=1000, help="number of scenes (default 1000)")
    s.add_argument("--size", type=int, default=128, help="scene width and height in pixels (default 128)")
    s.add_argument("--split", default="train", choices=("train", "test"),
                   help="which Fashion-MNIST split the items come from (default: train)")
    s.add_argument("--min-objects", type=int, help="fewest items per scene (default 1; --photos: 3)")
    s.add_argument("--max-objects", type=int, help="most items per scene (default 4; --photos: 24)")
    s.add_argument("--photos", action="store_true", help="real-size scenes on photographs (see above)")
    s.add_argument("--width", type=int, default=640, help="--photos: scene width in pixels (default 640)")
    s.add_argument("--height", type=int, default=480, help="--photos: scene height in pixels (default 480)")
    s.add_argument("--min-side", type=int, default=12, help="--photos: smallest item side in pixels (default 12)")
    s.add_argument("--workers", type=int, help="--photos: processes generating scenes (default: all cores)")
    add_seed(s)
    s.add_argument("--data-dir", help="folder holding Fashion-MNIST's files")
    s.add_argument("--download", action="store_true", help="download Fashion-MNIST (checksum-verified)")
    s.set_defaults(func=cmd_scenes)

    c = kinds.add_parser("convert", help="convert detection annotations: COCO <-> YOLO <-> Pascal VOC",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Read a detection dataset in any supported format and write it as another into a new folder, copying the "
        "images (to images/ for COCO and YOLO, JPEGImages/ for VOC). SRC is a COCO .json, a YOLO data .yaml (--split "
        "picks its train/val/test entry) or a folder with Annotations/ (VOC), annotations.json or data.yaml. Boxes "
        "outside the image are clipped and degenerate ones dropped, each with a warning naming the file; instance "
        "masks travel between COCO (RLE) and VOC (SegmentationObject PNGs). VOC stores whole pixels, YOLO 6 "
        "decimals of the image size.\n"
        "example: dcv data convert scenes/annotations.json --to yolo --out scenes_yolo"))
    c.add_argument("src", type=existing("annotation file or dataset folder"),
                   help="annotations to read (COCO .json, YOLO .yaml, or a dataset folder)")
    c.add_argument("--to", required=True, choices=ANNOTATION_FORMATS, help="format to write")
    c.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    c.add_argument("--split", default="train", help="YOLO source: which entry of the data YAML (default: train)")
    c.set_defaults(func=cmd_convert)


def cmd_scenes(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data import named
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.data.scenes import SceneConfig, fashion_scenes, write_scenes
    from dcvkit.errors import DataError

    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    empty_out_dir(args.out)  # fail before the work, not after
    train, test = named.load("fashion-mnist", args.data_dir, download_ok=args.download)
    if args.photos:
        from dcvkit.data.scenes import PhotoSceneConfig, write_photo_scenes

        pc = PhotoSceneConfig(height=args.height, width=args.width, min_side=args.min_side,
                              min_objects=3 if args.min_objects is None else args.min_objects,
                              max_objects=24 if args.max_objects is None else args.max_objects)
        root, n_obj = write_photo_scenes(train if args.split == "train" else test, args.n, args.out, args.format, pc,
                                         seed=args.seed, workers=args.workers, progress=True,
                                         provenance={"split": args.split, "seed": args.seed})
        out.print(f"wrote {args.n} scenes ({n_obj} objects, {args.width}x{args.height}) as {args.format} to {root}")
        return 0
    cfg = SceneConfig(size=args.size, min_objects=1 if args.min_objects is None else args.min_objects,
                      max_objects=4 if args.max_objects is None else args.max_objects)
    scenes = fashion_scenes(train if args.split == "train" else test, args.n, cfg, seed=args.seed)
    root = write_scenes(scenes, args.out, args.format, progress=True,
                        provenance={"split": args.split, "seed": args.seed, "size": args.size,
                                    "min_objects": cfg.min_objects, "max_objects": cfg.max_objects})
    n_obj = sum(len(b) for b in scenes.boxes)
    out.print(f"wrote {len(scenes)} scenes ({n_obj} objects, {args.size}x{args.size}) as {args.format} to {root}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data.detection import convert

    ann, path = convert(args.src, args.out, args.to, args.split)
    n_obj = sum(len(im.boxes) for im in ann.images)
    out.print(f"wrote {len(ann.images)} images ({n_obj} objects, {len(ann.classes)} classes) as {args.to}: {path}")
    return 0


__all__ = ["build"]
