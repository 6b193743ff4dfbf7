"""``dcv track [predict] RUN SOURCE`` and ``dcv track val RUN --data CLIPS``: tracking by detection."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_weights, existing
from dcvkit.config import add_config_arguments, resolve

#: ``dcv track RUN SOURCE`` means ``dcv track predict RUN SOURCE`` (cli/main.py inserts the mode)
DEFAULT_MODE = "predict"
MODES = ("predict", "val")


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.tasks.configs import TrackConfig

    p.description = ("Multi-object tracking by detection: a trained detector (dcv detect train, e.g. --model yolo) "
                     "finds the objects of each frame, a tracker links them into tracks with persistent ids. "
                     "`dcv track RUN SOURCE` is `dcv track predict RUN SOURCE`.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    pr = modes.add_parser("predict", help="track the objects of a video, frames folder or MOT sequence",
                          formatter_class=RAW, description=(
        "Detects every frame of SOURCE (a video file OpenCV reads, a folder of numbered frames, or a MOTChallenge "
        "sequence folder: seqinfo.ini, img1/) with the detector of RUN, letterboxed to its training size, and links "
        "the detections into tracks. Trackers: iou (greedy IoU with the last box, the baseline), sort (Kalman filter "
        "+ Hungarian assignment), bytetrack (SORT + a second pass matching low-score detections, lost tracks kept "
        "--buffer frames), appearance (ByteTrack whose first pass compares the detector's own features by cosine "
        "distance, gated by the Kalman filter: DeepSORT-like). Writes runs/track/<name>: config.yaml, results.txt "
        "(MOTChallenge: frame,id,x,y,w,h,score,-1,-1,-1), tracks.json, tracks.mp4 (boxes, ids, trails), "
        "summary.json (frames per second, detector and tracker ms per frame apart), and metrics.json when SOURCE "
        "is a MOT sequence with gt/gt.txt.\n"
        "examples:\n  dcv track runs/detect/yolo street.mp4\n"
        "  dcv track runs/detect/yolo clips/clip-000 --tracker appearance\n"
        "  dcv track predict runs/detect/yolo frames/ --tracker sort --no-video"))
    add_weights(pr, "the detector: a dcv detect train run directory or checkpoint (.pt)")
    pr.add_argument("source", metavar="SOURCE", type=existing("video, frames folder or MOT sequence"),
                    help="a video file, a folder of frames, or a MOT sequence folder")
    add_config_arguments(pr, TrackConfig)
    pr.set_defaults(func=cmd_predict)

    v = modes.add_parser("val", help="MOTA, IDF1, HOTA of every tracker on the same detections",
                         formatter_class=RAW, description=(
        "Scores trackers on MOT sequences with ground truth (--data: one sequence, or a folder of them with a "
        "seqmaps/ file or sequence subfolders, as dcv data clips writes): every frame is detected once and each "
        "tracker links the same detections. Prints and writes (--out) one row per tracker: HOTA (DetA, AssA), MOTA, "
        "IDF1, MOTP, ID switches, fragmentations, FP, FN, and tracker ms per frame; the detector's ms per frame "
        "apart. --tracker defaults to all here. The metrics equal motmetrics' (CLEAR MOT, IDF1) and TrackEval's "
        "(HOTA); see dcvkit.metrics.tracking.\n"
        "example: dcv data clips --out clips && dcv track val runs/detect/yolo --data clips --tracker all"))
    add_weights(v, "the detector: a dcv detect train run directory or checkpoint (.pt)")
    v.add_argument("--data", required=True, type=existing("MOT sequence or folder of sequences"),
                   help="a MOT sequence, or a folder of them (seqmaps/*.txt or sequence subfolders)")
    v.add_argument("--out", metavar="DIR", help="folder to write results.json and table.md into")
    add_config_arguments(v, TrackConfig, skip=("trail", "video", "project", "name"))  # val writes no run
    v.set_defaults(func=cmd_val, tracker="all")
    for action in v._actions:  # val scores every tracker unless told otherwise
        if action.dest == "tracker":
            action.help = action.help.replace("(default: bytetrack)", "(default here: all)")


def cmd_predict(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out
    from dcvkit.tasks.configs import TrackConfig
    from dcvkit.tasks.track import track

    r = track(args.weights, args.source, resolve(TrackConfig, args))
    out.print(f"{r.frames} frames, {r.tracks} tracks, {r.fps:.1f} frames/s (detector {r.detector_ms_per_frame:.2f} "
              f"ms/frame, tracker {r.tracker_ms_per_frame:.3f} ms/frame)")
    if r.metrics:
        m = r.metrics
        out.print(f"HOTA {m['HOTA']:.3f}  MOTA {m['MOTA']:.3f}  IDF1 {m['IDF1']:.3f}  IDSW {m['IDSW']}  "
                  f"FP {m['FP']}  FN {m['FN']}")
    out.print(f"run directory: {r.run_dir} ({', '.join(r.files)})")
    return 0


def cmd_val(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table
    from dcvkit.tasks.configs import TrackConfig
    from dcvkit.tasks.track import evaluate, table_rows

    r = evaluate(args.weights, args.data, resolve(TrackConfig, args), out_dir=args.out)
    print_table(table_rows(r), title=f"{r['detector']} detections on {r['sequences']} sequences, {r['frames']} "
                                     f"frames, {r['objects']} objects (metrics in %)")
    out.print(f"detector: {r['detector_ms_per_frame']:.2f} ms/frame on {r['device']} ({r['threads']} threads); "
              "tracker times exclude it")
    if "warning" in r:
        out.print(f"warning: {r['warning']}")
    if args.out:
        out.print(f"wrote {args.out}/results.json and table.md")
    return 0


__all__ = ["build", "DEFAULT_MODE", "MODES"]
