"""``dcv pose train|val|predict``: keypoints of articulated figures (or people), scored by OKS AP."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_evaluation, add_images, add_out, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("Pose estimation: the keypoints of every person (figure) in an image, scored by COCO's OKS AP. "
                     "Models (dcv models --task pose): yolo_pose (one pass: the small yolo with a keypoint branch, "
                     "each keypoint refined from a stride-4 patch around it, an OKS loss), heatmap (top-down: "
                     "crops of each person's box -> a U-Net -> one heatmap per keypoint; needs boxes: the ground "
                     "truth's or a pose run's, --boxes), keypoint_rcnn (faster_rcnn with a keypoint head on RoI "
                     "features).")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("pose"), "train a pose model", report=report_train, description=(
        "Train a pose model on articulated figures (--data figures, the default: COCO's 17 keypoints, 128x128, "
        "figures textured with Fashion-MNIST items; dcv data figures writes them) or on a COCO keypoints .json / "
        "YOLO-pose data .yaml with any number of keypoints (its sigmas, or a default with a warning). Horizontal "
        "flips mirror the keypoints and swap left and right by the flip index. Writes runs/pose/<name>: "
        "config.yaml, best.pt, last.pt, metrics.csv, tensorboard/, curves.png, results.json (OKS AP, AP50, AP75, "
        "AR, PCK@0.2, per-keypoint error, ms per image), predictions.png.\n"
        "examples:\n  dcv pose train\n  dcv pose train --model heatmap --name heatmap\n"
        "  dcv pose train --data people/annotations.json --img-size 256"))
    v = modes.add_parser("val", help="OKS AP, PCK and ms per image of a trained pose model", formatter_class=RAW,
                         description=(
        "COCO keypoint evaluation (faster-coco-eval; --backend pycocotools for the reference) with the keypoint "
        "set's own sigmas: AP over OKS 0.50:0.95, AP50, AP75, AR; PCK@0.2 (within 0.2 of the box's longer side) "
        "and each keypoint's mean error; milliseconds per image.\n"
        "example: dcv pose val runs/pose/exp --out runs/pose/exp/val"))
    add_evaluation(v, "folder to write results.json and predictions.png into",
                   data="pose annotations to evaluate on (a COCO keypoints .json or a YOLO-pose .yaml: its --split "
                        "entry; default: the run's own test split)")
    v.add_argument("--backend", default="faster_coco_eval", choices=("faster_coco_eval", "pycocotools"),
                   help="COCO evaluation library (default: faster_coco_eval)")
    add_boxes(v, "gt (default: the ground truth's boxes, the keypoint estimate alone) or a pose run directory "
                 "(yolo_pose, keypoint_rcnn) whose people are used: the whole pipeline, its time counted")
    v.set_defaults(func=cmd_val)
    pr = modes.add_parser("predict", help="skeletons drawn on image files + COCO keypoint results JSON",
                          formatter_class=RAW, description=(
        "Writes <stem>_pose.png (the skeletons drawn on the original image) per image and predictions.json (file, "
        "keypoints [x, y, presence, ...] in the original image's pixels, bbox, score). Images of any size are "
        "letterboxed to the training size and the keypoints mapped back.\n"
        "example: dcv pose predict runs/pose/exp dance.png --out poses/"))
    add_weights(pr)
    add_images(pr)
    add_out(pr, "folder for the outputs", default="poses")
    pr.add_argument("--score-thresh", type=float, help="draw people scoring at least this (default: the run's)")
    add_boxes(pr, "a pose run directory (yolo_pose, keypoint_rcnn) whose people are used (default: each whole "
                  "image is one person)")
    add_device(pr)
    pr.set_defaults(func=cmd_predict)


def add_boxes(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--boxes", metavar="gt|RUN", help=f"top-down models (heatmap): the people's boxes: {what}")


def report_train(result) -> None:
    from dcvkit.cli.output import out

    line, t = fit_line(result), result.test
    if t:
        line += f"; test OKS AP {t['ap']:.4f}, AP50 {t['ap50']:.4f}, {t['ms_per_image']:.2f} ms/image"
    out.print(f"{line}\nrun directory: {result.run_dir}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table

    r = get_task("pose").evaluate(args.weights, data=args.data, split=args.split, device=args.device,
                                  out_dir=args.out, backend=args.backend, boxes=args.boxes)
    out.print(f"{r['model']} on the {args.split} split: {r['images']:,} images, {r['objects']:,} people, "
              f"{r['keypoints']} keypoints ({r['backend']}; boxes: {r['boxes']})")
    out.print(f"  OKS AP {r['ap']:.3f}  AP50 {r['ap50']:.3f}  AP75 {r['ap75']:.3f}  AR {r['ar']:.3f}  "
              f"PCK@0.2 {r['pck@0.2']:.3f}  {r['ms_per_image']:.2f} ms/image")
    print_table([{"keypoint": k["keypoint"], "PCK@0.2": "-" if k["pck"] is None else f"{k['pck']:.3f}",
                  "error px": "-" if k["error_px"] is None else f"{k['error_px']:.2f}"} for k in r["per_keypoint"]])
    if "warning" in r:
        out.print(f"warning: {r['warning']}")
    if args.out:
        out.print(f"wrote {args.out}/results.json and predictions.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    rows = get_task("pose").predict(args.weights, args.images, args.out, device=args.device,
                                    score_thresh=args.score_thresh, boxes=args.boxes)
    for path in args.images:
        n = sum(r["file"] == str(path) for r in rows)
        out.print(f"{path}: {n} people")
    out.print(f"wrote {args.out}/predictions.json and a _pose.png per image")
    return 0


__all__ = ["build"]
