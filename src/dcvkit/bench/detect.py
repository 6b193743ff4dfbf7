"""``dcv bench detect``: the detection lineage side by side on one FashionScenes split (the course's
"comparison of detection speeds": R-CNN, Fast R-CNN, Faster R-CNN, YOLO).

Each detector is trained with ``dcv detect train``'s defaults on the same scenes (or loaded from a run,
``--runs rcnn=runs/detect/exp3``) and evaluated on the same test scenes (COCO mAP). Speed is measured side
by side in one process, batch 1: the ``timing_images`` test images go in blocks of ``block``; each detector
runs the block, one image at a time, in turn (the order rotating from block to block), and the median
seconds per image are compared with ``rcnn``'s, as the course's "comparison of detection speeds" does.
Blocks, not single images, so that each detector is timed warm, as on a stream of images (switching
detectors at every image made the 2-ms YOLO pay a cold start, its weights out of cache and its threads
parked, worth a quarter of its time), while the rotation keeps the machine's drift out of the ratios. Proposal seconds per image are reported separately, as
the papers do (selective search on one image at a time, timed in the same loop; the sliding windows are
the same boxes for every image, computed once). Faster R-CNN's RPN and the YOLOs need no proposals: their
whole time is network time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.bench import run_pairs
from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.data.detection import DetectionTensors, to_tensors
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table


@dataclass
class BenchDetectConfig(RunConfig):
    """Benchmark: which detectors, trained or loaded, timed on how many images."""

    models: str = opt("sliding_window,rcnn,fast_rcnn,faster_rcnn,yolo_v1,yolo",
                      "comma-separated detectors (dcv models --task detect)")
    runs: str | None = opt(None, "load instead of training: model=RUN_DIR pairs, comma-separated")
    data: str = opt("scenes", "FashionScenes, or any detection dataset (a COCO .json, a YOLO data .yaml, a VOC "
                              "folder; e.g. dcv data scenes --photos)")
    test_data: str | None = opt(None, "the dataset's test split (same formats; default: its YAML's test entry)")
    img_size: int | None = opt(None, "letterbox the dataset's images to this square size (default: dcv detect "
                                     "train's: the first image's, longest side at most 640)")
    train_minutes: float | None = opt(None, "the CPU budget: train each detector (and the peer) for this many "
                                            "minutes of wall-clock time (default: dcv detect train's epochs)")
    epochs: int | None = opt(None, "epochs per detector (default: the detector's own, or unlimited within "
                                   "--train-minutes)")
    batch_size: int | None = opt(None, "training batch size (default: the detector's own)")
    warmup_epochs: float = opt(0.0, "linear learning-rate warm-up epochs for every detector")
    memory_mb: float = opt(2048, "decode the dataset into memory up to this many MB, else stream it")
    workers: int = opt(2, "data-loader worker processes for streamed data")
    peer: str = opt("none", "also train Ultralytics YOLOv8n from scratch (yolov8n.yaml, no weights) for "
                            "--train-minutes on the same data, scored by the same evaluator; it runs in its own "
                            "environment (AGPL-3.0: never a dependency)", ("none", "ultralytics"))
    peer_env: str | None = opt(None, "the peer's virtual environment (default ~/.cache/dcvkit/peers/ultralytics)")
    install_peer: bool = opt(False, "create the peer's environment if missing (pip install ultralytics: network)")
    scenes: int = opt(4000, "FashionScenes training scenes (10% validate)")
    test_scenes: int = opt(500, "FashionScenes test scenes (mAP)")
    timing_images: int = opt(100, "test images on which the detectors are timed side by side")
    block: int = opt(10, "images each detector runs in a row before the next one takes over")
    onnx: bool = opt(True, "also run the YOLOs exported to ONNX by onnxruntime (rows 'yolo (onnxruntime)'; needs "
                           "dcvkit[export])")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    progress: bool = opt(True, "show progress bars and one line per epoch")


def bench_detect(cfg: BenchDetectConfig, out_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    from dcvkit.export import missing_dependency
    from dcvkit.models.detect.proposals import propose_all
    from dcvkit.tasks.detect import (DetectConfig, detect_images, evaluate, load_detector, load_splits, meta_proposer,
                                     train)

    models = [m.strip() for m in cfg.models.split(",") if m.strip()]
    loaded = run_pairs(cfg.runs)
    if not models:
        raise ConfigError("--models: give at least one detector")
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "detect", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    if cfg.peer != "none" and not cfg.train_minutes and "ultralytics" not in loaded:
        raise ConfigError("--peer: give --train-minutes, the wall-clock budget both sides train for")
    python = None
    if cfg.peer == "ultralytics":  # fail before hours of training, not after
        from dcvkit.bench.peers import DEFAULT_ENV, ensure_env

        python = ensure_env(Path(cfg.peer_env) if cfg.peer_env else DEFAULT_ENV, cfg.install_peer, log)
    base = DetectConfig(data=cfg.data, test_data=cfg.test_data, img_size=cfg.img_size, data_dir=cfg.data_dir,
                        scenes=cfg.scenes, test_scenes=cfg.test_scenes, seed=cfg.seed, device=cfg.device,
                        tensorboard=False, progress=cfg.progress, memory_mb=cfg.memory_mb, workers=cfg.workers,
                        max_time=cfg.train_minutes, epochs=cfg.epochs or (100_000 if cfg.train_minutes else None),
                        batch_size=cfg.batch_size, warmup_epochs=cfg.warmup_epochs)
    splits = load_splits(base)
    if splits.test is None:
        raise ConfigError("--test-scenes must be at least 1 (or give --test-data)")
    if python is not None and not all(getattr(s, "files", None) for s in (splits.train, splits.val, splits.test)):
        raise ConfigError("--peer ultralytics trains on files: give --data a dataset on disk (YOLO layout: "
                          "dcv data scenes --photos --format yolo) with a validation split")
    log(splits.summary())
    runs: dict[str, Path] = {}
    for m in [m for m in models if m != "ultralytics"]:
        if m in loaded:
            runs[m] = Path(loaded[m])
            continue
        log(f"{m}: training with dcv detect train's defaults")
        tcfg = DetectConfig(**{**to_dict(base), "model": m, "test": False})
        runs[m] = train(tcfg, run_dir=out_dir / m, splits=splits).run_dir
    rows: dict[str, dict[str, Any]] = {}
    nets: dict[str, tuple[Any, dict[str, Any]]] = {}
    for m, run in runs.items():
        weights = run / "best.pt" if run.is_dir() else run
        r = evaluate(weights, data=splits.test, device=cfg.device, out_dir=out_dir / f"{m}_test", progress=cfg.progress)
        model, meta = load_detector(weights, cfg.device)
        nets[m] = (model, meta)
        rows[m] = {"model": m, "kind": model.kind, "run": str(run),
                   "params": sum(p.numel() for p in model.parameters()),
                   "map50": r["map50"], "map": r["map"], "proposals": r["proposals"],
                   "proposals_per_image": r["proposals_per_image"]}
        log(f"{m}: mAP@0.5 {r['map50']:.4f}, mAP@[.5:.95] {r['map']:.4f}")
        streamed = not isinstance(splits.test, DetectionTensors)
        if cfg.onnx and model.export_outputs and missing_dependency() is None and not streamed:  # onnxruntime too
            name, net, row = _onnx_row(m, weights, meta, splits.test, out_dir, rows[m])
            nets[name], rows[name] = net, row
            log(f"{name}: mAP@0.5 {row['map50']:.4f}, mAP@[.5:.95] {row['map']:.4f}")
    if python is not None:
        rows["ultralytics yolov8n"] = _peer_row(python, cfg, splits, out_dir, log, loaded.get("ultralytics"))
    # Side by side: the same images, each detector in turn, rotating the order; medians.
    n = min(cfg.timing_images, len(splits.test))
    timing = splits.test
    if not isinstance(timing, DetectionTensors):  # streamed: the timing images decoded into memory
        timing = to_tensors(timing.subset(torch.arange(n)))
    images = timing.images[:n]
    proposers = {m: meta_proposer(meta) for m, (_, meta) in nets.items()}
    distinct = {repr(p): p for p in proposers.values() if p is not None}  # rcnn and fast_rcnn share one
    props = {m: propose_all(images, p).boxes if p is not None else None for m, p in proposers.items()}
    times: dict[str, list[float]] = {m: [] for m in nets}
    ptimes: dict[str, list[float]] = {key: [] for key in distinct}
    names = list(nets)
    for m in names:  # warm-up
        detect_images(nets[m][0], nets[m][1], images[:2], _part(props[m], 0, 2))
    block = max(1, cfg.block)
    for r, a in enumerate(range(0, n, block)):
        b = min(a + block, n)
        for key, proposer in distinct.items():  # proposals timed here too, in this process, one image at a time
            for i in range(a, b):
                t0 = time.perf_counter()
                proposer(images[i])
                ptimes[key].append(time.perf_counter() - t0)
        for j in range(len(names)):
            m = names[(r + j) % len(names)]
            times[m] += detect_images(nets[m][0], nets[m][1], images[a:b], _part(props[m], a, b))[1]
    for m in names:
        rows[m]["network_s_per_image"] = statistics.median(times[m])  # (the peer: timed in its own process)
        p = proposers[m]
        rows[m]["proposal_s_per_image"] = statistics.median(ptimes[repr(p)]) if p is not None else 0.0
    ref = rows.get("rcnn")
    for r in rows.values():  # the timed detectors and the peer alike
        r["total_s_per_image"] = r["network_s_per_image"] + r["proposal_s_per_image"]
    for r in rows.values():
        r["network_speedup_vs_rcnn"] = ref["network_s_per_image"] / r["network_s_per_image"] if ref else None
        r["total_speedup_vs_rcnn"] = ref["total_s_per_image"] / r["total_s_per_image"] if ref else None
    result = {"config": to_dict(cfg), "data": splits.summary(), "timing_images": n, "block": block,
              "threads": torch.get_num_threads(), "rows": list(rows.values()), "verdicts": verdicts(rows),
              "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    plot_speeds(result, out_dir / "speeds.png")
    return result


def _onnx_row(m: str, weights: Path, meta: dict[str, Any], test: Any, out_dir: Path, torch_row: dict[str, Any]):
    """The YOLO ``m`` exported to ONNX and run by onnxruntime: its net for the timing loop and its table row
    (mAP from onnxruntime's own outputs on the test scenes)."""
    from dcvkit.export import OnnxDetector, export, pixel_meta
    from dcvkit.metrics.detection import coco_eval
    from dcvkit.tasks.detect import detect_images

    path = export(weights, out=out_dir / f"{m}.onnx", check=0)["file"]
    net, pmeta = OnnxDetector(path), pixel_meta(meta)
    dets, _ = detect_images(net, pmeta, test.images, None)  # type: ignore[arg-type]
    r = coco_eval(test.boxes, test.labels, [d.boxes for d in dets], [d.scores for d in dets],
                  [d.labels for d in dets], meta["classes"])
    name = f"{m} (onnxruntime)"
    return name, (net, pmeta), {**torch_row, "model": name, "map50": r["map50"], "map": r["map"]}


def _peer_row(python: Path, cfg: BenchDetectConfig, splits: Any, out_dir: Path, log: Callable[[str], None],
              trained: str | None = None) -> dict[str, Any]:
    """Ultralytics YOLOv8n trained from scratch for --train-minutes on the same train / val images (or loaded:
    ``--runs ultralytics=DIR``, an earlier bench's ultralytics/ folder), its detections on the same test
    images scored by the same evaluator (original pixels)."""
    from dcvkit.bench.peers import peer_data_yaml, ultralytics_yolov8n
    from dcvkit.metrics.detection import coco_eval

    peer_dir = out_dir / "ultralytics"
    peer_dir.mkdir(parents=True, exist_ok=True)
    data_yaml = peer_data_yaml(peer_dir, splits.train.files, splits.val.files, list(splits.classes))
    if trained is None:
        log(f"ultralytics yolov8n: training from scratch for {cfg.train_minutes:g} minutes (its own process)")
    imgsz = max(splits.img_size)
    p = ultralytics_yolov8n(python, data_yaml, [Path(f) for f in splits.test.files], float(cfg.train_minutes or 0),
                            imgsz, cfg.batch_size or 16, cfg.seed, cfg.workers, peer_dir,
                            Path(trained) if trained else None)
    dets = p["detections"]
    r = coco_eval(splits.test.original_boxes(), splits.test.labels,
                  [torch.tensor(d["boxes"]).reshape(-1, 4) for d in dets], [torch.tensor(d["scores"]) for d in dets],
                  [torch.tensor(d["labels"], dtype=torch.long) for d in dets], list(splits.classes))
    log(f"ultralytics yolov8n: mAP@0.5 {r['map50']:.4f}, mAP@[.5:.95] {r['map']:.4f} ({p['epochs']} epochs in "
        f"{p['seconds'] / 60:.1f} min)")
    return {"model": "ultralytics yolov8n", "kind": "grid", "run": str(peer_dir), "params": None,
            "map50": r["map50"], "map": r["map"], "proposals": "none", "proposals_per_image": None,
            "network_s_per_image": statistics.median(p["predict_seconds"]), "proposal_s_per_image": 0.0,
            "epochs": p["epochs"], "train_s": p["seconds"], "img_size": imgsz}


def _part(boxes: list | None, a: int, b: int) -> list | None:
    return boxes[a:b] if boxes is not None else None


def verdicts(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    peer = rows.get("ultralytics yolov8n")
    for y in [m for m in ("yolo_n", "yolo_s") if m in rows and peer]:
        v = rows[y]
        side = "at least" if v["map50"] >= peer["map50"] else "below"
        out.append(f"{y} is {side} Ultralytics YOLOv8n's mAP@0.5 at equal wall-clock training: {v['map50']:.3f} vs "
                   f"{peer['map50']:.3f} (mAP@[.5:.95] {v['map']:.3f} vs {peer['map']:.3f})")
    if "rcnn" in rows and "fast_rcnn" in rows:
        f, r = rows["fast_rcnn"], rows["rcnn"]
        out.append(f"fast_rcnn runs its network {f['network_speedup_vs_rcnn']:.1f}x faster per image than rcnn "
                   f"({f['network_s_per_image'] * 1000:.1f} vs {r['network_s_per_image'] * 1000:.1f} ms; with the "
                   f"same selective search: {f['total_speedup_vs_rcnn']:.1f}x in total) at mAP@0.5 "
                   f"{f['map50']:.3f} vs {r['map50']:.3f}")
    if "sliding_window" in rows and "rcnn" in rows:
        s, r = rows["sliding_window"], rows["rcnn"]
        out.append(f"proposals vs brute force: rcnn mAP@0.5 {r['map50']:.3f} from {r['proposals_per_image']:.0f} "
                   f"proposals vs sliding_window {s['map50']:.3f} from {s['proposals_per_image']:.0f} windows")
    if "fast_rcnn" in rows and "faster_rcnn" in rows:
        f, g = rows["fast_rcnn"], rows["faster_rcnn"]
        out.append(f"a learned proposer: faster_rcnn (RPN) mAP@0.5 {g['map50']:.3f} vs fast_rcnn (selective search) "
                   f"{f['map50']:.3f}; {f['total_s_per_image'] / g['total_s_per_image']:.1f}x faster in total "
                   f"({g['total_s_per_image'] * 1000:.1f} vs {f['total_s_per_image'] * 1000:.1f} ms per image)")
    for y in [m for m, r in rows.items() if r["kind"] == "grid"]:  # the one-pass detectors (the YOLOs)
        if y in rows and "rcnn" in rows:
            v, r = rows[y], rows["rcnn"]
            claim = "at least 100x" if v["total_speedup_vs_rcnn"] >= 100 else "less than 100x"
            out.append(f"{y} runs {v['total_speedup_vs_rcnn']:.0f}x faster per image than rcnn ({claim}: "
                       f"{v['total_s_per_image'] * 1000:.2f} vs {r['total_s_per_image'] * 1000:.1f} ms; network alone "
                       f"{v['network_speedup_vs_rcnn']:.0f}x) at mAP@0.5 {v['map50']:.3f} vs {r['map50']:.3f}")
        if y in rows and "faster_rcnn" in rows:
            v, g = rows[y], rows["faster_rcnn"]
            faster = "faster" if v["total_s_per_image"] < g["total_s_per_image"] else "slower"
            out.append(f"{y} is {faster} than faster_rcnn: {v['total_s_per_image'] * 1000:.2f} vs "
                       f"{g['total_s_per_image'] * 1000:.2f} ms per image, mAP@0.5 {v['map50']:.3f} vs "
                       f"{g['map50']:.3f}")
    return out


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    def x(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}x"

    return [{"model": r["model"], "params (M)": "-" if r["params"] is None else f"{r['params'] / 1e6:.2f}",
             "mAP@0.5": f"{r['map50']:.4f}",
             "mAP@[.5:.95]": f"{r['map']:.4f}", "proposals": r["proposals"],
             "regions/img": "-" if r["proposals_per_image"] is None else f"{r['proposals_per_image']:.0f}",
             "proposal s/img": f"{r['proposal_s_per_image']:.4f}", "network s/img": f"{r['network_s_per_image']:.4f}",
             "total s/img": f"{r['total_s_per_image']:.4f}", "network speed-up vs rcnn": x(r["network_speedup_vs_rcnn"]),
             "total speed-up vs rcnn": x(r["total_speedup_vs_rcnn"])} for r in result["rows"]]


def plot_speeds(result: dict[str, Any], path: Path) -> None:
    """The course's "comparison of detection speeds": seconds per image per detector, the network alone and
    with its proposals, on a log scale, with the speed-up over R-CNN and the mAP@0.5."""
    from dcvkit.viz.plots import plt, save_figure

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(2.0 + 1.8 * len(rows), 4.4))
    xs = range(len(rows))
    bars = (("network_s_per_image", "network", "#4c72b0", -0.2),
            ("total_s_per_image", "total: with external proposals (selective search, one core)", "#dd8452", 0.2))
    for key, label, colour, dx in bars:
        vals = [r[key] for r in rows]
        ax.bar([x + dx for x in xs], vals, width=0.38, color=colour, label=label)
        for x, v in zip(xs, vals):
            label = f"{v * 1000:.1f} ms" if v < 0.01 else f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"
            ax.text(x + dx, v * 1.08, label, ha="center", fontsize=7)
    labels = []
    for r in rows:
        up = r["total_speedup_vs_rcnn"]
        labels.append(f"{r['model']}\nmAP50 {r['map50']:.2f}" + (f", {up:.1f}x" if up and r["model"] != "rcnn" else ""))
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per image (log scale)")
    ax.set_title(f"detection speed, {result['threads']} CPU threads, batch 1 (speed-up: total vs rcnn)", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.margins(y=0.25)
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["BenchDetectConfig", "bench_detect", "table_rows", "verdicts"]
