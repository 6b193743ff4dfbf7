"""``dcv bench ...``: side-by-side speed comparisons written as JSON plus a table."""

from __future__ import annotations

import argparse

from dcvkit.config import add_config_arguments, resolve


#: dcv bench KIND: name -> (module under dcvkit.bench, its config class, its line in --help, its description)
BENCHES = {
    "classify": ("classify", "BenchClassifyConfig",
        "training throughput: dcvkit vs bare PyTorch vs PIL/ToTensor DataLoader",
        ("Training throughput (images/s) of the same model, optimizer and batch size: dcvkit's engine, a bare "
         "PyTorch loop, and torchvision's usual PIL -> ToTensor -> DataLoader pipeline; interleaved rounds, medians. "
         "Writes runs/bench/classify/<name>/bench.json.\nexample: dcv bench classify --models cnn,mlp")),
    "architectures": ("architectures", "BenchArchitecturesConfig",
        "classic architectures trained under the same time budget",
        ("Trains each architecture on Fashion-MNIST for the same wall-clock budget (the budget is turned into epochs "
         "from a measured throughput) and prints parameters, FLOPs per image, images/s and test accuracy beside the "
         "Fashion-MNIST benchmark's published figure for the family. Writes "
         "runs/bench/architectures/<name>/{bench.json, table.md, accuracy.png} and one run directory per "
         "model.\nexample: dcv bench architectures --models cnn,resnet20 --budget-minutes 2")),
    "augment": ("augment", "BenchAugmentConfig",
        "augmentation throughput: batched dcvkit vs per-sample torchvision v2 and Keras semantics",
        ("The same pipeline (rotation, shift, zoom, horizontal flip, brightness) on batches of uint8 images: dcvkit "
         "on whole batches, torchvision.transforms.v2 per sample in a DataLoader, and Keras' ImageDataGenerator "
         "semantics per sample with scipy. Interleaved rounds, medians. Writes "
         "runs/bench/augment/<name>/{bench.json, table.md}.\nexample: dcv bench augment --sizes 28,224")),
    "saliency": ("saliency", "BenchSaliencyConfig",
        "perturbation saliency: the naive loop vs dcvkit's batched and incremental engines vs captum",
        ("The course's perturbation saliency on the same model and image: the literal per-pixel loop (one forward "
         "pass per perturbed copy), dcvkit's batched and incremental engines, and captum's FeatureAblation; at "
         "28x28x1 for --models and at --large-size RGB for --large-model (on images with more than --naive-values "
         "pixel values the naive loop, captum and the batched engine run on that many and are scaled to the whole "
         "image, as the table says). Each map is checked against the naive loop's. Writes "
         "runs/bench/saliency/<name>/{bench.json, table.md}.\nexample: dcv bench saliency --large-size 0")),
    "segment": ("segment", "BenchSegmentConfig",
        "unet vs skip-less conv_autoencoder vs smp.Unet, same scenes and budget",
        ("Trains each model on the same FashionScenes split (128x128, 10 classes + background) for the same "
         "wall-clock budget through the same task (loss, optimizer, schedule, metrics), then prints parameters, "
         "GFLOPs per image, training and prediction images/s, and test mean Dice / IoU over the foreground classes. "
         "smp_unet is segmentation_models_pytorch.Unet with random init (pip install 'dcvkit[bench]'). Writes "
         "runs/bench/segment/<name>/{bench.json, table.md, dice.png} and one run directory per model.\nexample: dcv "
         "bench segment --models unet,conv_autoencoder --budget-minutes 3")),
    "proposals": ("proposals", "BenchProposalsConfig",
        "selective-search recall at IoU 0.5/0.7 vs proposals kept, s/image",
        ("On FashionScenes test scenes: the share of ground-truth boxes that the first N proposals cover at IoU >= "
         "0.5 and >= 0.7 (N = 100, 500, 2000 by default), for selective search (OpenCV-contrib ximgproc, fast and "
         "quality modes) beside the sliding-window pyramid, and seconds per image on one core. Writes "
         "runs/bench/proposals/<name>/{bench.json, table.md, recall.png}.\nexample: dcv bench proposals --scenes 100 "
         "--modes fast")),
    "detect": ("detect", "BenchDetectConfig",
        "the detection lineage side by side: mAP, seconds per image, speed-ups",
        ("The lineage table: trains (or loads, --runs model=RUN_DIR) every detector (sliding_window, rcnn, "
         "fast_rcnn, faster_rcnn, yolo_v1, yolo) on the same FashionScenes split with dcv detect train's defaults, "
         "evaluates each on the same test scenes (COCO mAP@0.5 and mAP@[.5:.95]), and times them side by side on the "
         "same test images, batch 1 (blocks of --block images, each detector in turn, medians): proposal, network "
         "and total seconds per image, the speed-up over rcnn, parameters. Writes "
         "runs/bench/detect/<name>/{bench.json, table.md, speeds.png} (speeds.png: the course's comparison of "
         "detection speeds).\nexamples:\n  dcv bench detect                      # trains all six (hours on 2 "
         "cores)\n  dcv bench detect --runs rcnn=runs/detect/exp2,yolo=runs/detect/exp5 --models rcnn,yolo")),
    "generative": ("generative", "BenchGenerativeConfig",
        "dcvkit's VAE vs the PyTorch examples' MLP VAE: -ELBO and images/s",
        ("Trains, for the same epochs on the same split: the PyTorch examples' VAE (MLP 784-400-20, bare loop, "
         "written in the benchmark), the same design through dcvkit (dcv generate train --arch mlp --hidden 400 "
         "--kl-schedule none), and dcv generate train's default VAE (convolutional, linear KL annealing). Scores all "
         "three with the same function on the same test images: negative ELBO (nats per image), its terms, an "
         "importance-sampled NLL estimate, training images/s (ratios vs the reference). Writes "
         "runs/bench/generative/<name>/{bench.json, table.md}.\nexample: dcv bench generative --epochs 10")),
    "tune": ("tune", "BenchTuneConfig",
        "TPE vs random search vs a grid: best validation accuracy vs trials",
        ("Runs one dcv tune study per sampler (no pruning) on the same small problem (--fixed; default cnn_small, 2 "
         "epochs, 5,000 Fashion-MNIST images) and search space (default lr and dropout, a 4 x 4 grid): the best "
         "validation accuracy each found, the trial that found it, and best_so_far.png. Writes "
         "runs/bench/tune/<name>/{bench.json, table.md, best_so_far.png} and each study's run directory.\nexample: "
         "dcv bench tune --trials 16")),
    "streaming": ("streaming", "BenchStreamingConfig",
        "training from memory vs streamed from files: images/s on the same images",
        ("Loads one dataset that fits in memory both ways (decoded into memory; streamed from its files by "
         "decoding threads, letterboxed by the same function) and trains yolo_n (--task detect) or a U-Net on "
         "random crops (--task segment) one epoch from each in turn, alternating; medians and the ratio. Without "
         "--data it writes --images photo scenes (dcv data scenes --photos) to a temporary folder. Writes "
         "runs/bench/streaming/<name>/{bench.json, table.md}.\nexample: dcv bench streaming --task segment "
         "--images 128")),
    "track": ("track", "BenchTrackConfig",
        "trackers side by side: on one detector's boxes, and on true boxes with noise",
        ("Detects every frame of the test clips once with --run's detector (without --run, dcv detect train --model "
         "yolo is trained first) and links the same detections with each tracker (iou, sort, bytetrack, "
         "appearance); then links the true boxes, jittered by --noise and thinned by --miss, with the same trackers, "
         "which separates association errors from detection errors. Scores HOTA, MOTA, IDF1, AssA, id switches, "
         "fragmentations, FP, FN; times each tracker's update (ms per frame) on the clips and on denser clips with "
         "--timing-objects items per frame, the detector's ms per frame apart. Writes "
         "runs/bench/track/<name>/{bench.json, table.md}.\nexample: dcv bench track --run runs/detect/yolo")),
    "pose": ("pose", "BenchPoseConfig",
        "pose models side by side: one pass, two stages, top-down; OKS AP and ms per image",
        ("Trains yolo_pose, heatmap and keypoint_rcnn with dcv pose train's defaults on the same figures (or loads "
         "them: --runs heatmap=runs/pose/heatmap,...) and scores each on the same test figures: OKS AP, AP50, AP75, "
         "AR, PCK@0.2, parameters; the top-down heatmap inside the true boxes and inside --boxes-from's people (the "
         "whole pipeline). Times every model side by side in one process, batch 1, rotating blocks; medians. Writes "
         "runs/bench/pose/<name>/{bench.json, table.md, ap_vs_ms.png}.\n"
         "example: dcv bench pose --runs yolo_pose=runs/pose/yolo_pose,heatmap=runs/pose/heatmap,"
         "keypoint_rcnn=runs/pose/keypoint_rcnn")),
    "scenegraph": ("scenegraph", "BenchSceneGraphConfig",
        "scene-graph models from blind to seeing in PredCls, SGCls and SGDet: R@K, mR@K, depth and appearance",
        ("Trains frequency, geometry and visual with dcv scenegraph train's defaults on the same graph scenes (or "
         "loads them: --runs visual=runs/scenegraph/visual,...) and scores each on the same test scenes in PredCls, "
         "SGCls and SGDet (the objects of --detector's run; without it, yolo is trained first on the same training "
         "scenes): R@20/50/100, mR@50, ngR@50, zero-shot R@50, the depth and appearance predicates' recall, ms per "
         "image; a second table of each predicate's PredCls recall@50 per model. Writes "
         "runs/bench/scenegraph/<name>/{bench.json, table.md}.\n"
         "example: dcv bench scenegraph --detector runs/detect/yolo")),
    "serve": ("serve", "BenchServeConfig",
        "dcv serve under load: requests/s and p50/p95/p99 latency, batching on and off, torch vs onnx",
        ("Starts dcv serve on a free loopback port once per configuration (dynamic batching with --max-batch, and "
         "batch-1 serving; each --backends) and sends --requests PNG test images from --clients concurrent "
         "keep-alive connections (after --warmup); configurations take turns over --rounds. Without --run, a cnn is "
         "trained for 1 epoch first. Writes runs/bench/serve/<name>/{bench.json, table.md, throughput.png}.\n"
         "example: dcv bench serve --run runs/classify/exp --clients 16")),
    "startup": ("startup", "BenchStartupConfig",
        "how fast dcv answers (--help, argument errors) vs importing torch",
        ("Starts each dcv command line (--help, a train command's --help, an argument error) in fresh processes, "
         "round after round beside `python -c 'import torch'` and a bare interpreter; medians, ratios to importing "
         "torch, and whether each command imported torch (none may: parsing never does). Writes "
         "runs/bench/startup/<name>/{bench.json, table.md}.\nexample: dcv bench startup --repeats 20")),
}


def build(p: argparse.ArgumentParser, command: str) -> None:
    import importlib

    p.description = "Benchmarks: comparisons run side by side in one process, reported as ratios, JSON and a table."
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (module, config, summary, description) in BENCHES.items():
        k = kinds.add_parser(name, help=summary, description=description,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_arguments(k, getattr(importlib.import_module(f"dcvkit.bench.{module}"), config))
        k.set_defaults(func=globals()[f"cmd_bench_{name}"])


def _log(line: str) -> None:
    from dcvkit.cli.output import err

    err.print(line, highlight=False)


def _report(results: dict, rows: list[dict], title: str, files: str, lines: list[str] | tuple[str, ...] = ()) -> int:
    """What every bench command prints: its table, its verdicts (and any other lines), the files it wrote."""
    from dcvkit.cli.output import out, print_table

    print_table(rows, title=title)
    for line in [*results.get("verdicts", []), *lines]:
        out.print(line)
    out.print(f"wrote {results['out_dir']}/{files}")
    return 0


def cmd_bench_track(args: argparse.Namespace) -> int:
    from dcvkit.bench.track import BenchTrackConfig, bench_track, table_rows

    r = bench_track(resolve(BenchTrackConfig, args), log=_log)
    return _report(r, table_rows(r), f"{r['detector']} on {r['sequences']} clips, {r['frames']} frames; detector "
                                     f"{r['detector_ms_per_frame']:.2f} ms/frame apart, {r['threads']} threads "
                                     "(metrics in %)", "bench.json and table.md")


def cmd_bench_pose(args: argparse.Namespace) -> int:
    from dcvkit.bench.pose import BenchPoseConfig, bench_pose, table_rows

    r = bench_pose(resolve(BenchPoseConfig, args), log=_log)
    return _report(r, table_rows(r), f"pose on {r['data']}; batch 1, {r['threads']} threads, medians of "
                                     f"{r['timing_images']} images", "bench.json, table.md and ap_vs_ms.png")


def cmd_bench_scenegraph(args: argparse.Namespace) -> int:
    from dcvkit.bench.scenegraph import BenchSceneGraphConfig, bench_scenegraph, predicate_rows, table_rows
    from dcvkit.cli.output import print_table

    r = bench_scenegraph(resolve(BenchSceneGraphConfig, args), log=_log)
    print_table(predicate_rows(r), title="PredCls recall@50 per predicate")
    return _report(r, table_rows(r), f"scene graphs on {r['data']}; SGDet objects from {r['detector']}; "
                                     f"{r['threads']} threads", "bench.json and table.md")


def cmd_bench_serve(args: argparse.Namespace) -> int:
    from dcvkit.bench.serve import BenchServeConfig, bench_serve, table_rows

    r = bench_serve(resolve(BenchServeConfig, args), log=_log)
    title = f"dcv serve, {r['run']}: {r['clients']} clients, {r['requests']:,} requests x {r['rounds']} rounds, " \
        f"{r['cores']} cores, server threads {r['server_threads']}"
    return _report(r, table_rows(r), title, "bench.json, table.md, throughput.png")


def cmd_bench_startup(args: argparse.Namespace) -> int:
    from dcvkit.bench.startup import BenchStartupConfig, bench_startup, table_rows

    r = bench_startup(resolve(BenchStartupConfig, args), log=_log)
    return _report(r, table_rows(r), f"dcv's answer time, fresh processes, Python {r['python']} (medians)",
                   "bench.json and table.md")


def cmd_bench_streaming(args: argparse.Namespace) -> int:
    from dcvkit.bench.streaming import BenchStreamingConfig, bench_streaming, table_rows

    r = bench_streaming(resolve(BenchStreamingConfig, args), log=_log)
    return _report(r, table_rows(r), f"{r['task']}: {r['images']} images at {r['img_size'][0]}x{r['img_size'][1]}, "
                                     f"{r['threads']} threads (medians of epochs)", "bench.json and table.md")


def cmd_bench_tune(args: argparse.Namespace) -> int:
    from dcvkit.bench.tune import BenchTuneConfig, bench_tune, table_rows

    r = bench_tune(resolve(BenchTuneConfig, args), log=_log)
    return _report(r, table_rows(r), f"samplers on: {r['fixed']}", "bench.json, table.md, best_so_far.png",
                   [r["verdict"]])


def cmd_bench_generative(args: argparse.Namespace) -> int:
    from dcvkit.bench.generative import BenchGenerativeConfig, bench_generative, table_rows

    r = bench_generative(resolve(BenchGenerativeConfig, args), log=_log)
    return _report(r, table_rows(r), f"{r['data']}; test -ELBO on {r['test_images']:,} images, NLL on "
                                     f"{r['nll_images']:,}; {r['threads']} threads", "bench.json and table.md")


def cmd_bench_detect(args: argparse.Namespace) -> int:
    from dcvkit.bench.detect import BenchDetectConfig, bench_detect, table_rows

    r = bench_detect(resolve(BenchDetectConfig, args), log=_log)
    title = (f"{r['data']}; timed side by side on {r['timing_images']} test images (batch 1, blocks of {r['block']}), "
             f"{r['threads']} threads")
    return _report(r, table_rows(r), title, "bench.json, table.md, speeds.png")


def cmd_bench_proposals(args: argparse.Namespace) -> int:
    from dcvkit.bench.proposals import BenchProposalsConfig, bench_proposals, table_rows

    r = bench_proposals(resolve(BenchProposalsConfig, args), log=_log)
    return _report(r, table_rows(r), f"region proposals on {r['scenes']} FashionScenes test scenes ({r['objects']} "
                                     "objects); seconds per image on one core", "bench.json, table.md, recall.png")


def cmd_bench_segment(args: argparse.Namespace) -> int:
    from dcvkit.bench.segment import BenchSegmentConfig, bench_segment, table_rows

    cfg = resolve(BenchSegmentConfig, args)
    r = bench_segment(cfg, log=_log)
    return _report(r, table_rows(r), f"{r['data']}: {cfg.budget_minutes:g} min of training per model on {r['device']} "
                                     f"({r['threads']} threads)", "bench.json, table.md, dice.png")


def cmd_bench_saliency(args: argparse.Namespace) -> int:
    from dcvkit.bench.saliency import BenchSaliencyConfig, bench_saliency

    r = bench_saliency(resolve(BenchSaliencyConfig, args), log=_log)
    rows = [{"case": f"{c['model']} {c['channels']}x{c['size']}x{c['size']}, {2 * len(c['deltas'])} steps",
             "engine": x["engine"], "seconds": round(x["seconds"], 3), "forward passes": f"{x['forward_passes']:,}",
             "speed-up": f"{x['speedup']:.1f}x",
             "max |diff|": "" if x["max_abs_diff"] is None else f"{x['max_abs_diff']:.1e}"}
            for c in r["cases"] for x in c["rows"]]
    return _report(r, rows, f"perturbation saliency, {r['threads']} threads", "bench.json and table.md")


def cmd_bench_augment(args: argparse.Namespace) -> int:
    from dcvkit.bench.augment import BenchAugmentConfig, bench_augment, table_rows

    r = bench_augment(resolve(BenchAugmentConfig, args), log=_log)
    return _report(r, table_rows(r), f"augmentation throughput, batches of {r['batch_size']}, {r['threads']} threads "
                                     "(medians)", "bench.json and table.md")


def cmd_bench_classify(args: argparse.Namespace) -> int:
    from dcvkit.bench.classify import BenchClassifyConfig, bench_classify, table_rows

    r = bench_classify(resolve(BenchClassifyConfig, args), log=_log)
    return _report(r, table_rows(r), f"training throughput, {r['threads']} threads (medians)", "bench.json")


def cmd_bench_architectures(args: argparse.Namespace) -> int:
    from dcvkit.bench.architectures import BenchArchitecturesConfig, bench_architectures, table_rows

    cfg = resolve(BenchArchitecturesConfig, args)
    r = bench_architectures(cfg, log=_log)
    return _report(r, table_rows(r), f"Fashion-MNIST, {cfg.budget_minutes:g} min of training per model on "
                                     f"{r['device']} ({r['threads']} threads)", "bench.json, table.md, accuracy.png",
                   [f"best within the budget: {r['best']}"])
