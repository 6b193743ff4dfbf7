"""``dcv detect train|val|predict``: the detection lineage behind one interface."""

from __future__ import annotations

import argparse

from dcvkit.choices import COCO_BACKENDS
from dcvkit.cli.common import RAW, add_device, add_evaluation, add_images, add_out, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("Object detection, the course's lineage: brute-force sliding windows, R-CNN (selective search + "
                     "CNN + SVMs), Fast R-CNN (RoI pooling), Faster R-CNN (region proposal network), YOLO v1 (S x S "
                     "grid) and a modern anchor-free YOLO.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("detect"), "train a detector", report=report_train, description=(
        "Train a detector on FashionScenes (--data scenes, the default: Fashion-MNIST items on textured backgrounds, "
        "128x128, 10 classes) or on COCO JSON / YOLO data.yaml / Pascal VOC annotations. The region detectors "
        "learn from regions sampled per image (25% foreground at IoU >= 0.5): proposals for sliding_window, rcnn and "
        "fast_rcnn, the RPN's for faster_rcnn (trained jointly with its RPN); rcnn then fits one linear SVM per "
        "class with hard-negative mining and ridge box regressors. yolo_v1 learns the paper's sum-squared loss on an "
        "S x S grid; yolo an anchor-free stride-8 grid with CIoU, objectness and IoU-aware class losses and mosaic. Writes runs/detect/<name>: config.yaml, best.pt, "
        "last.pt, metrics.csv, tensorboard/, curves.png, results.json (COCO mAP, per-class AP, proposal and network "
        "seconds per image), pr_curves.png, predictions.png. Selective-search proposals are computed in parallel "
        "and cached under ~/.cache/dcvkit/proposals ($DCV_CACHE).\n"
        "examples:\n  dcv detect train                                   # fast_rcnn on FashionScenes\n"
        "  dcv detect train --model rcnn\n  dcv detect train --model sliding_window --window-stride 6\n"
        "  dcv detect train --model fast_rcnn --roi align --backbone cnn_small\n"
        "  dcv detect train --model faster_rcnn\n  dcv detect train --model yolo --epochs 80 --mosaic 0.3\n"
        "  dcv detect train --data my_coco/annotations.json --img-size 256"))

    v = modes.add_parser("val", help="COCO mAP, per-class AP and seconds per image of a trained detector",
                         formatter_class=RAW, description=(
        "COCO evaluation (faster-coco-eval; --backend pycocotools for the reference): the standard 12-number "
        "summary, per-class AP and AP@0.5, and proposal / network / total seconds per image.\n"
        "example: dcv detect val runs/detect/exp --out runs/detect/exp/val"))
    add_evaluation(v, "folder to write results.json, pr_curves.png and predictions.png into",
                   data="annotations to evaluate on, every image of them (a COCO .json, a YOLO .yaml: its --split "
                        "entry, a VOC folder; default: the run's own test split)")
    v.add_argument("--backend", default=COCO_BACKENDS[0], choices=COCO_BACKENDS,
                   help=f"COCO evaluation library (default: {COCO_BACKENDS[0]})")
    v.set_defaults(func=cmd_val)

    pr = modes.add_parser("predict", help="labelled boxes on image files + COCO-style JSON", formatter_class=RAW,
                          description=(
        "Writes <stem>_detections.png (boxes, class names and scores drawn on the original image) per image and "
        "predictions.json (COCO results: file, category_id, category, bbox [x, y, w, h] in the original image's "
        "pixels, score). Images of any size are letterboxed to the training size (scaled to fit with their aspect "
        "ratio kept, padded grey; --resize stretch: resized; --img-size: letterboxed to another size) and the boxes "
        "mapped back to the original pixels.\n"
        "example: dcv detect predict runs/detect/exp scene.png --out boxes/"))
    add_weights(pr)
    add_images(pr)
    add_out(pr, "folder for the outputs", default="detections")
    pr.add_argument("--score-thresh", type=float, help="keep detections scoring at least this in predictions.json "
                                                       "(default: the run's, 0.05 unless trained otherwise)")
    pr.add_argument("--show-score", type=float, help="draw those scoring at least this (default: 0.3, or "
                                                     "--score-thresh when higher); the evaluation is unaffected")
    pr.add_argument("--all-classes", action="store_true",
                    help="also draw a second class on an object already claimed by a higher-scoring box (IoU "
                         "> 0.7); by default each object shows its best class only, the best boxes on top")
    pr.add_argument("--resize", default="letterbox", choices=("letterbox", "stretch"),
                    help="fit images to the training size keeping their aspect ratio (default) or stretch them")
    pr.add_argument("--img-size", type=int, help="letterbox to this square size instead of the training size "
                                                 "(rounded up to a multiple of 32; not yolo_v1): big images keep "
                                                 "objects at the scale the detector learned")
    add_device(pr)
    pr.set_defaults(func=cmd_predict)


SUMMARY = (("map", "AP @[IoU=0.50:0.95 | area=all | maxDets=100]"), ("map50", "AP @[IoU=0.50 | area=all | maxDets=100]"),
           ("map75", "AP @[IoU=0.75 | area=all | maxDets=100]"), ("map_small", "AP @[IoU=0.50:0.95 | area=small]"),
           ("map_medium", "AP @[IoU=0.50:0.95 | area=medium]"), ("map_large", "AP @[IoU=0.50:0.95 | area=large]"),
           ("mar1", "AR @[IoU=0.50:0.95 | maxDets=1]"), ("mar10", "AR @[IoU=0.50:0.95 | maxDets=10]"),
           ("mar100", "AR @[IoU=0.50:0.95 | maxDets=100]"), ("mar_small", "AR @[area=small]"),
           ("mar_medium", "AR @[area=medium]"), ("mar_large", "AR @[area=large]"))


def print_results(r: dict, title: str) -> None:
    from dcvkit.cli.output import out, print_table

    out.print(title)
    for key, label in SUMMARY:
        v = r[key]
        out.print(f"  {label:<48} = {v:.3f}" if v >= 0 else f"  {label:<48} =  n/a (no such objects)")
    rows = [{"class": c["class"], "objects": c["objects"],
             "AP": c["ap"] if c["ap"] is not None else "-", "AP50": c["ap50"] if c["ap50"] is not None else "-"}
            for c in r["per_class"]]
    print_table(rows, floatfmt=".3f")
    if r["proposals_per_image"] is None:  # the RPN's regions or YOLO's grid: all inside the network
        where = f"none ({r['proposals']}: inside the network)"
    else:
        where = f"{r['proposal_s_per_image']:.4f} ({r['proposals']}, {r['proposals_per_image']:.0f} per image)"
    out.print(f"seconds per image: proposals {where}, network {r['network_s_per_image']:.4f}, "
              f"total {r['total_s_per_image']:.4f}")


def report_train(result) -> None:
    from dcvkit.cli.output import out

    line, t = fit_line(result), result.test
    if t:
        line += (f"; test mAP@0.5 {t['map50']:.4f}, mAP@[.5:.95] {t['map']:.4f}, "
                 f"{t['total_s_per_image']:.3f} s/image ({t['proposal_s_per_image']:.3f} proposals)")
    out.print(f"{line}\nrun directory: {result.run_dir}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    r = get_task("detect").evaluate(args.weights, data=args.data, split=args.split, device=args.device,
                                    out_dir=args.out,
                 progress=True, backend=args.backend)
    print_results(r, f"{r['model']} on the {args.split} split: {r['images']:,} images, {r['objects']:,} objects "
                     f"({r['backend']})")
    if args.out:
        out.print(f"wrote {args.out}/results.json, pr_curves.png, predictions.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    preds = get_task("detect").predict(args.weights, args.images, args.out, device=args.device,
                                       score_thresh=args.score_thresh, resize=args.resize, img_size=args.img_size,
                                       show_score=args.show_score, all_classes=args.all_classes)
    for p in preds:
        found = ", ".join(f"{d['category']} {d['score']:.2f}" for d in p.detections[:6])
        more = f" (+{len(p.detections) - 6} more)" if len(p.detections) > 6 else ""
        out.print(f"{p.path}: {p.png} - {len(p.detections)} detections{': ' + found if found else ''}{more}")
    out.print(f"wrote {args.out}/predictions.json")
    return 0


__all__ = ["build", "print_results"]
