"""``dcv data scenes``: write FashionScenes to disk in a standard format; ``dcv data clips``: moving scenes
with true identities (MOTChallenge); ``dcv data figures``: articulated figures with keypoints (COCO, YOLO-pose);
``dcv data scenegraphs``: scenes with a scene graph each (Visual-Genome-like JSON); ``dcv data lidar``: simulated
LiDAR frames with 3-D boxes (KITTI layout); ``dcv data convert``: COCO <->
YOLO <-> VOC."""

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
    add_items(s)
    s.set_defaults(func=cmd_scenes)

    k = kinds.add_parser("clips", help="moving FashionScenes with true identities, in the MOTChallenge layout",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Clips in which Fashion-MNIST items (the test split's for --split test, the train split's for --split train) "
        "move over a textured background: constant velocity disturbed by noise in heading and speed, now and then a "
        "sharp turn, bounces off the edges or exits, new items entering from the edges; items nearer in depth hide "
        "those behind when they cross. Per frame the ground truth: id, class, the box of what is visible and the "
        "visible fraction (items under 20%% visible have no row). Written in the MOTChallenge layout TrackEval "
        "reads: OUT/clip-000/{seqinfo.ini, img1/000001.png, gt/gt.txt}, OUT/seqmaps/<split>.txt; --video adds "
        "OUT/clip-000.mp4. --crossing adds a clip of two same-class items crossing with occlusion (the appearance "
        "tracker's test). Clip i depends only on --seed and i.\n"
        "example: dcv data clips --out clips --n 10 && dcv track val runs/detect/yolo --data clips"))
    k.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    k.add_argument("--n", type=int, default=10, help="number of clips (default 10)")
    k.add_argument("--frames", type=int, default=60, help="frames per clip (default 60)")
    k.add_argument("--size", type=int, default=128, help="frame width and height in pixels (default 128)")
    k.add_argument("--min-objects", type=int, default=3, help="items at the start, at least (default 3)")
    k.add_argument("--max-objects", type=int, default=6, help="items at once, at most (default 6)")
    k.add_argument("--split", default="test", choices=("train", "test"),
                   help="which Fashion-MNIST split the items come from (default: test)")
    k.add_argument("--fps", type=float, default=25.0, help="frame rate written to seqinfo.ini and the videos")
    k.add_argument("--video", action="store_true", help="also write each clip as an MP4 (OpenCV)")
    k.add_argument("--crossing", action="store_true", help="add a clip of two same-class items crossing")
    add_items(k)
    k.set_defaults(func=cmd_clips)

    f = kinds.add_parser("figures", help="articulated figures with exact keypoints (COCO keypoints, YOLO-pose)",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Images of 2-D articulated figures on COCO's 17-keypoint kinematic tree (random joint angles within limits, "
        "limb lengths, scale), drawn as thick limbs textured with Fashion-MNIST items (a top on the torso and upper "
        "arms, trousers on the legs, shoes at the ankles; train-split items for --split train, test-split for "
        "--split test), several overlapping figures per image on textured backgrounds. Keypoints from forward "
        "kinematics; visibility 2 (seen), 1 (hidden by another figure), 0 (outside the image). Formats:\n"
        "  coco   images/, annotations.json (person_keypoints: keypoints, num_keypoints, skeleton, bbox, area, "
        "and the category's sigmas and flip_idx)\n"
        "  yolo   images/, labels/*.txt (class cx cy w h x y v ...), data.yaml (kpt_shape, flip_idx)\n"
        "example: dcv data figures --out figures/train --n 2000 && dcv data figures --out figures/test --split test "
        "--n 300"))
    f.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    f.add_argument("--format", default="coco", choices=("coco", "yolo"), help="annotation format (default: coco)")
    f.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    f.add_argument("--size", type=int, default=128, help="image width and height in pixels (default 128)")
    f.add_argument("--min-figures", type=int, default=1, help="fewest figures per image (default 1)")
    f.add_argument("--max-figures", type=int, default=3, help="most figures per image (default 3)")
    f.add_argument("--split", default="train", choices=("train", "test"),
                   help="which Fashion-MNIST split the items come from (default: train)")
    add_items(f)
    f.set_defaults(func=cmd_figures)

    g = kinds.add_parser("scenegraphs", help="FashionScenes with a scene graph each (Visual-Genome-like JSON)",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Graph scenes: 3 to 7 Fashion-MNIST items per 128x128 image (train-split items for --split train, test-split "
        "for --split test), tinted from a palette of eight colours, overlapping, with one predicate per related "
        "ordered pair: left of, right of, above, below, near, overlapping (geometric); in front of, behind (which "
        "item hides the other's pixels: depth); same colour as, matches (a top of a trouser's colour), pairs with (two "
        "shoes of one class) (appearance). Written as images/*.png and scene_graphs.json (objects with x y w h and "
        "names, relationships with subject_id, predicate, object_id; the classes and predicates listed). "
        "dcv scenegraph train's own scenes are --seed S (train) and --seed S+1 (test), S = --scene-seed.\n"
        "example: dcv data scenegraphs --out graphs/train --n 3000 && dcv data scenegraphs --out graphs/test "
        "--split test --seed 1 --n 500 && dcv scenegraph train --data graphs/train/scene_graphs.json "
        "--test-data graphs/test/scene_graphs.json"))
    g.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    g.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    g.add_argument("--split", default="train", choices=("train", "test"),
                   help="which Fashion-MNIST split the items come from (default: train)")
    add_items(g)
    g.set_defaults(func=cmd_scenegraphs)

    li = kinds.add_parser("lidar", help="simulated LiDAR scenes with 3-D boxes, in the KITTI layout",
                          formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Simulated LiDAR frames: cars, pedestrians and cyclists (plus unlabelled poles and a wall) on a ground plane, "
        "a 32-beam spinning LiDAR 1.73 m up casting rays over the camera's field of view (range noise, dropped "
        "returns, intensity per surface), KITTI's camera. Written in the KITTI layout: velodyne/*.bin (float32 x y "
        "z intensity), label_2/*.txt (type truncated occluded alpha, 2-D box, h w l, x y z bottom centre in the "
        "camera frame, rotation_y), calib/*.txt (P2, R0_rect, Tr_velo_to_cam), image_2/*.png (the rendered camera "
        "view). dcv detect3d train's own scenes are --seed S (train) and S+1 (test), S = --scene-seed. --stereo "
        "writes instead one real frame from scikit-image's Middlebury motorcycle stereo pair (points from its "
        "ground-truth disparity) and a picture of the cloud.\n"
        "examples:\n  dcv data lidar --out lidar/train --n 3000 && dcv data lidar --out lidar/test --n 500 --seed 1\n"
        "  dcv detect3d train --data lidar/train --test-data lidar/test\n"
        "  dcv data lidar --stereo --out motorcycle && dcv detect3d predict runs/detect3d/exp motorcycle"))
    li.add_argument("--out", required=True, help="new folder to write (refused if it exists and is not empty)")
    li.add_argument("--n", type=int, default=100, help="number of frames (default 100)")
    li.add_argument("--no-images", dest="images", action="store_false", help="leave out image_2/ (the camera views)")
    li.add_argument("--stereo", action="store_true", help="one real frame from scikit-image's motorcycle stereo pair")
    add_seed(li)
    li.set_defaults(func=cmd_lidar)

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


def add_items(p: argparse.ArgumentParser) -> None:
    """What the scene and clip writers share: --seed and where Fashion-MNIST's items come from."""
    add_seed(p)
    p.add_argument("--data-dir", help="folder holding Fashion-MNIST's files")
    p.add_argument("--download", action="store_true", help="download Fashion-MNIST (checksum-verified)")


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


def cmd_clips(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data import named
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.data.clips import ClipConfig, crossing_clip, make_clip, write_clips
    from dcvkit.errors import DataError

    if args.n < 0 or (args.n == 0 and not args.crossing):
        raise DataError(f"--n must be at least 1 (or 0 with --crossing), got {args.n}")
    if not (args.fps > 0):
        raise DataError(f"--fps must be positive, got {args.fps}")
    empty_out_dir(args.out)
    train, test = named.load("fashion-mnist", args.data_dir, download_ok=args.download)
    items = train if args.split == "train" else test
    cfg = ClipConfig(size=args.size, frames=args.frames, min_objects=args.min_objects, max_objects=args.max_objects)
    clips = [make_clip(items, cfg, seed=args.seed, index=i) for i in range(args.n)]
    if args.crossing:
        clips.append(crossing_clip(items, size=args.size, seed=args.seed))
    paths = write_clips(clips, args.out, args.split, video=args.video, fps=args.fps)
    n_ids = sum(len({int(i) for g in c.gt for i in g.ids}) for c in clips)
    n_box = sum(len(g) for c in clips for g in c.gt)
    out.print(f"wrote {len(paths)} clips ({sum(len(c) for c in clips)} frames, {n_ids} identities, {n_box} boxes, "
              f"{args.size}x{args.size}) to {args.out} (MOTChallenge layout{', MP4s' if args.video else ''})")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data import named
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.data.figures import FigureConfig, write_figures
    from dcvkit.errors import DataError

    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    empty_out_dir(args.out)
    train, test = named.load("fashion-mnist", args.data_dir, download_ok=args.download)
    cfg = FigureConfig(size=args.size, min_figures=args.min_figures, max_figures=args.max_figures,
                       height=(0.44 * args.size, 0.88 * args.size))
    root, n = write_figures(train if args.split == "train" else test, args.n, args.out, args.format, cfg,
                            seed=args.seed, progress=True)
    out.print(f"wrote {args.n} images ({n} figures, 17 keypoints each, {args.size}x{args.size}) as {args.format} "
              f"to {root}")
    return 0


def cmd_scenegraphs(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data import named
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.data.scenegraph import from_graph_scenes, write_graph_scenes
    from dcvkit.errors import DataError

    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    empty_out_dir(args.out)
    train, test = named.load("fashion-mnist", args.data_dir, download_ok=args.download)
    data = from_graph_scenes(train if args.split == "train" else test, args.n, args.seed, progress=True)
    root = write_graph_scenes(data, args.out, {"split": args.split, "seed": args.seed})
    out.print(f"wrote {len(data)} images ({data.objects} objects, {data.triples} relationships, "
              f"{len(data.predicates)} predicates) to {root}/scene_graphs.json")
    return 0


def cmd_lidar(args: argparse.Namespace) -> int:
    import numpy as np

    from dcvkit.cli.output import out
    from dcvkit.data.annotations import empty_out_dir
    from dcvkit.data.kitti import write_frame
    from dcvkit.data.lidar_scenes import lidar_frame, render
    from dcvkit.errors import DataError
    from dcvkit.progress import track

    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    root = empty_out_dir(args.out)
    if args.stereo:
        from dcvkit.data.stereo import motorcycle_frame
        from dcvkit.viz.detect3d import draw_points

        frame, left = motorcycle_frame()
        write_frame(root, frame, left)
        draw_points(frame.points, root / "points.png", title="Middlebury motorcycle: points from stereo disparity")
        depth = frame.points[:, 0]
        out.print(f"wrote {len(frame.points):,} points (depth {depth.min():.2f}-{depth.max():.2f} m, median "
                  f"{float(np.median(depth)):.2f} m) to {root}/velodyne/000000.bin, calib, image_2 and points.png")
        return 0
    objects = 0
    for i in track(range(args.n), description=f"writing {args.n} LiDAR frames"):
        frame = lidar_frame(i, args.seed)
        write_frame(root, frame, render(frame, args.seed) if args.images else None)
        objects += len(frame.labels or ())
    out.print(f"wrote {args.n} frames ({objects} objects) to {root}: velodyne/, label_2/, calib/"
              f"{', image_2/' if args.images else ''}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.data.detection import convert

    ann, path = convert(args.src, args.out, args.to, args.split)
    n_obj = sum(len(im.boxes) for im in ann.images)
    out.print(f"wrote {len(ann.images)} images ({n_obj} objects, {len(ann.classes)} classes) as {args.to}: {path}")
    return 0


__all__ = ["build"]
