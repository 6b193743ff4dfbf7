"""``dcv detect3d train|val|predict``: oriented 3-D boxes from LiDAR point clouds, KITTI's AP."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_evaluation, add_out, add_train, add_weights, existing, fit_line
from dcvkit.tasks import get_task


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("3-D object detection: oriented boxes (x y z, l w h, yaw) of cars, pedestrians and cyclists "
                     "from a LiDAR point cloud, on a CPU (dense PyTorch ops only), scored by KITTI's AP with 40 "
                     "(and 11) recall points in 2-D, bird's-eye view and 3-D at IoU 0.7 (cars) / 0.5 (others), per "
                     "difficulty (easy, moderate, hard), and AOS. Data: simulated LiDAR scenes or any KITTI-layout "
                     "folder (velodyne/*.bin, calib/*.txt, label_2/*.txt). Models: dcv models --task detect3d.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("detect3d"), "train a 3-D detector", report=report_train, description=(
        "Train PointPillars (pillars -> bird's-eye-view pseudo-image -> 2-D CNN -> centre heatmap, box and "
        "direction heads) from scratch on simulated LiDAR scenes (--data scenes, the default: a 32-beam spinning "
        "LiDAR over cars, pedestrians, cyclists, poles and walls; dcv data lidar writes them) or on a KITTI-layout "
        "folder. Writes runs/detect3d/<name>: config.yaml, best.pt, last.pt, metrics.csv, tensorboard/, "
        "curves.png, results.json (KITTI AP per metric, class and difficulty, AOS, ms per frame), bev.png, "
        "camera.png.\n"
        "examples:\n  dcv detect3d train\n  dcv detect3d train --frames 500 --epochs 4 --name quick\n"
        "  dcv detect3d train --data kitti/training --test-data kitti/val"))
    v = modes.add_parser("val", help="KITTI AP (2-D, BEV, 3-D; R40, R11) per class and difficulty, AOS",
                         formatter_class=RAW, description=(
        "KITTI's evaluation on the run's test split (or --data, a KITTI-layout folder): AP|R40 and AP|R11 in 2-D, "
        "bird's-eye view and 3-D for each class and difficulty (easy / moderate / hard from the 2-D box height, "
        "occlusion and truncation), AOS, milliseconds per frame (one cloud at a time).\n"
        "example: dcv detect3d val runs/detect3d/exp --out runs/detect3d/exp/val"))
    add_evaluation(v, "folder to write results.json, bev.png and camera.png into",
                   data="a KITTI-layout folder to evaluate on (default: the run's own test split)")
    v.set_defaults(func=cmd_val)
    pr = modes.add_parser("predict", help="3-D boxes of a KITTI-layout folder's frames: pictures + KITTI results",
                          formatter_class=RAW, description=(
        "Detects in every frame of a KITTI-layout folder (labels not needed; drawn dashed when present). Writes "
        "<id>_bev.png (the points from above, boxes with their heading), <id>_camera.png (boxes projected onto "
        "image_2, when the frame has an image), label_2/<id>.txt (KITTI result rows with scores) and "
        "detections.json.\n"
        "example: dcv detect3d predict runs/detect3d/exp lidar/test --out det3d/"))
    add_weights(pr)
    pr.add_argument("source", type=existing("KITTI-layout folder"), help="KITTI-layout folder (velodyne/, calib/)")
    add_out(pr, "folder for the outputs", default="det3d")
    pr.add_argument("--min-score", type=float, default=0.3, help="draw detections scoring at least this (default "
                                                                 "0.3; the result files hold all)")
    pr.add_argument("--limit", type=int, default=None, help="the first N frames only")
    add_device(pr)
    pr.set_defaults(func=cmd_predict)


def report_train(result) -> None:
    from dcvkit.cli.output import out

    line, t = fit_line(result), result.test
    if t:
        line += "; test 3-D AP|R40 moderate " + ", ".join(
            f"{c} {v:.4f}" for c, v in t["ap3d_moderate"].items() if v is not None)
        line += f"; {t['ms_per_frame']:.1f} ms per frame"
    out.print(f"{line}\nrun directory: {result.run_dir}")


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table

    r = get_task("detect3d").evaluate(args.weights, data=args.data, split=args.split, device=args.device,
                                      out_dir=args.out)
    out.print(f"{r['model']} on the {args.split} split: {r['frames']:,} frames, {r['objects']:,} objects, "
              f"{r['detections_per_frame']:.1f} detections per frame, {r['ms_per_frame']:.1f} ms per frame "
              f"({r['device']}, {r['threads']} threads)")
    rows = []
    for cls in next(iter(r["ap"].values())):
        for metric in r["ap"]:
            e = r["ap"][metric][cls]
            rows.append({"class": cls, "metric": metric, **{
                f"{d} R40": "-" if e[d]["AP_R40"] is None else f"{e[d]['AP_R40']:.4f}" for d in e},
                "moderate R11": "-" if e["moderate"]["AP_R11"] is None else f"{e['moderate']['AP_R11']:.4f}",
                "AOS moderate": f"{e['moderate']['AOS_R40']:.4f}" if metric == "bbox" and e["moderate"]["AP_R40"]
                is not None else "", "objects (mod.)": e["moderate"]["gt"]})
    print_table(rows)
    if "warning" in r:
        out.print(f"warning: {r['warning']}")
    if args.out:
        out.print(f"wrote {args.out}/results.json, bev.png and camera.png")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    rows = get_task("detect3d").predict(args.weights, args.source, args.out, device=args.device,
                                        min_score=args.min_score, limit=args.limit)
    for r in rows[:20]:
        found = ", ".join(f"{n} {c}" for c, n in r["classes"].items() if n) or "nothing"
        out.print(f"frame {r['frame']}: {found} (score >= {args.min_score}; {r['detections']} in the result file, "
                  f"{r['ms']:.1f} ms)")
    out.print(f"wrote {len(rows)} frames to {args.out}: label_2/*.txt, *_bev.png, *_camera.png, detections.json")
    return 0


__all__ = ["build"]
