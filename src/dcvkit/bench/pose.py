"""``dcv bench pose``: the three families of pose estimation side by side on the same figures - one pass
(``yolo_pose``), two stages (``keypoint_rcnn``) and top-down (``heatmap``).

Each model is trained with ``dcv pose train``'s defaults on the same figures (or loaded from a run, ``--runs
heatmap=runs/pose/heatmap``) and scored on the same test figures by COCO's OKS AP (faster-coco-eval, the
keypoint set's sigmas). The top-down model is scored twice: inside the true boxes (its keypoints alone, as
SimpleBaseline and HRNet report on COCO with ground-truth boxes) and inside the people another model of the
bench found (``--boxes-from``, the whole pipeline: its time is the finder's plus its own).

Speed is measured side by side in one process, batch 1, like ``dcv bench detect``: the ``timing_images``
test images go in blocks of ``block``; each model runs the block one image at a time in turn, the order
rotating from block to block; medians. A top-down model is timed on the true boxes (its own seconds).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.bench import run_pairs
from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table

#: the issue's targets (OKS AP on the test figures), for the verdicts
TARGETS = {"yolo_pose": 0.70, "heatmap": 0.80, "keypoint_rcnn": 0.65}


@dataclass
class BenchPoseConfig(RunConfig):
    """Benchmark: which pose models, trained or loaded, timed on how many images."""

    models: str = opt("yolo_pose,heatmap,keypoint_rcnn", "comma-separated pose models (dcv models --task pose)")
    runs: str | None = opt(None, "load instead of training: model=RUN_DIR pairs, comma-separated")
    boxes_from: str = opt("yolo_pose", "the bench's model whose people the top-down models are also scored in "
                                       "(none: only the true boxes)")
    figures: int = opt(4000, "training figure images (10% validate)")
    test_figures: int = opt(500, "test figure images (OKS AP)")
    figure_seed: int = opt(0, "seed of the figure images")
    epochs: int | None = opt(None, "epochs per model (default: each model's own)")
    timing_images: int = opt(100, "test images on which the models are timed side by side")
    block: int = opt(10, "images each model runs in a row before the next one takes over")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    progress: bool = opt(True, "show progress bars and one line per epoch")


def bench_pose(cfg: BenchPoseConfig, out_dir: Path | None = None, log: Callable[[str], None] = print
               ) -> dict[str, Any]:
    from dcvkit.tasks.pose import PoseConfig, _detect, evaluate, load_pose_model, load_splits, train

    models = [m.strip() for m in cfg.models.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models: give at least one pose model")
    loaded = run_pairs(cfg.runs)
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "pose", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    base = PoseConfig(figures=cfg.figures, test_figures=cfg.test_figures, figure_seed=cfg.figure_seed,
                      data_dir=cfg.data_dir, seed=cfg.seed, device=cfg.device, tensorboard=False,
                      progress=cfg.progress, epochs=cfg.epochs, test=False)
    splits = load_splits(base)
    if splits.test is None or len(splits.test) == 0:
        raise ConfigError("--test-figures must be at least 1")
    log(splits.summary())
    runs: dict[str, Path] = {}
    for m in models:
        if m in loaded:
            runs[m] = Path(loaded[m])
            continue
        log(f"{m}: training with dcv pose train's defaults")
        runs[m] = train(PoseConfig(**{**to_dict(base), "model": m}), run_dir=out_dir / m, splits=splits).run_dir
    weights = {m: (r / "best.pt" if r.is_dir() else r) for m, r in runs.items()}
    nets = {m: load_pose_model(w, cfg.device)[:2] for m, w in weights.items()}
    finder = cfg.boxes_from if cfg.boxes_from in runs and not nets[cfg.boxes_from][0].needs_boxes else None
    rows: dict[str, dict[str, Any]] = {}
    for m in models:
        model, meta = nets[m]
        sources = ["gt", finder] if model.needs_boxes and finder else ["gt" if model.needs_boxes else None]
        for src in sources:
            name = m if src in (None, "gt") else f"{m} ({src}'s people)"
            r = evaluate(weights[m], data=splits.test, device=cfg.device, out_dir=out_dir / _slug(name),
                         boxes=None if src is None else (src if src == "gt" else str(runs[src])))
            rows[name] = {"model": m, "boxes": {None: "own", "gt": "true boxes"}.get(src, f"{src}'s"),
                          "run": str(runs[m]), "params": r["parameters"], "ap": r["ap"], "ap50": r["ap50"],
                          "ap75": r["ap75"], "ar": r["ar"], "pck@0.2": r["pck@0.2"],
                          "eval_ms_per_image": r["ms_per_image"], "target": TARGETS.get(m) if src != finder else None}
            log(f"{name}: OKS AP {r['ap']:.4f}, AP50 {r['ap50']:.4f}, PCK@0.2 {r['pck@0.2']:.4f}")
    # side by side: the same images, each model in turn, rotating the order; medians (top-down: true boxes)
    test = splits.test
    n = min(cfg.timing_images, len(test))
    images, boxes = test.images[:n], test.boxes[:n]
    names = list(nets)

    def run(m: str, a: int, b: int) -> list[float]:
        model, meta = nets[m]
        return _detect(model, meta, images[a:b], boxes[a:b] if model.needs_boxes else None)[1]

    for m in names:  # warm-up
        run(m, 0, min(2, n))
    times: dict[str, list[float]] = {m: [] for m in names}
    block = max(1, cfg.block)
    for k, a in enumerate(range(0, n, block)):
        for j in range(len(names)):
            m = names[(k + j) % len(names)]
            times[m] += run(m, a, min(a + block, n))
    ms = {m: 1000 * statistics.median(t) for m, t in times.items()}
    for row in rows.values():
        own = ms[row["model"]]
        row["ms_per_image"] = own + (ms[finder] if row["boxes"] not in ("own", "true boxes") else 0.0)
    result = {"config": to_dict(cfg), "data": splits.summary(), "timing_images": n, "block": block,
              "threads": torch.get_num_threads(), "rows": list(rows.values()), "out_dir": str(out_dir)}
    result["verdicts"] = verdicts(result)
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    plot_pose_bench(result, out_dir / "ap_vs_ms.png")
    return result


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_") + "_test"


def verdicts(result: dict[str, Any]) -> list[str]:
    """Each target met or missed, in measured numbers, and which model is fastest."""
    rows = result["rows"]
    out = []
    for r in rows:
        if r["target"] is not None:
            met = "met" if r["ap"] >= r["target"] else "MISSED"
            out.append(f"{r['model']} ({r['boxes']}): OKS AP {r['ap']:.3f} vs target {r['target']:.2f}: {met}")
    own = [r for r in rows if r["boxes"] in ("own", "true boxes")]
    if len(own) > 1:
        fastest = min(own, key=lambda r: r["ms_per_image"])
        others = ", ".join(f"{r['model']} {r['ms_per_image']:.2f}" for r in own if r is not fastest)
        out.append(f"fastest: {fastest['model']} at {fastest['ms_per_image']:.2f} ms/image ({others})")
    return out


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model": r["model"], "boxes": r["boxes"], "params": f"{r['params']:,}", "OKS AP": f"{r['ap']:.3f}",
             "AP50": f"{r['ap50']:.3f}", "AP75": f"{r['ap75']:.3f}", "AR": f"{r['ar']:.3f}",
             "PCK@0.2": f"{r['pck@0.2']:.3f}", "ms/image": f"{r['ms_per_image']:.2f}",
             "target": "-" if r["target"] is None else f"{r['target']:.2f}"} for r in result["rows"]]


def plot_pose_bench(result: dict[str, Any], path: Path) -> None:
    """OKS AP against milliseconds per image, one point per row."""
    from dcvkit.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in result["rows"]:
        ax.scatter(r["ms_per_image"], r["ap"], s=40)
        ax.annotate(f"{r['model']}\n({r['boxes']})", (r["ms_per_image"], r["ap"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"ms per image (batch 1, {result['threads']} threads)")
    ax.set_ylabel("OKS AP (test figures)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


__all__ = ["BenchPoseConfig", "bench_pose", "verdicts", "table_rows"]
