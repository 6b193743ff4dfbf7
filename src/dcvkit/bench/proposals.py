"""``dcv bench proposals``: how well do region proposals cover the objects, and at what cost?

On FashionScenes test scenes: the recall of the ground-truth boxes (the share of boxes that some proposal
overlaps with IoU >= 0.5, and >= 0.7) when keeping the first N proposals, for selective search in its fast
and quality modes, beside the brute-force window pyramid; and the seconds each method takes per image on
one core. R-CNN and Fast R-CNN cannot find an object no proposal covers, so this recall bounds their
recall.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.models.detect.proposals import SelectiveSearch, SlidingWindows, propose_all, recall
from dcvkit.viz.report import markdown_table


@dataclass
class BenchProposalsConfig(RunConfig):
    """Benchmark: which proposal methods, how many proposals, on how many scenes."""

    scenes: int = opt(200, "FashionScenes test scenes to measure on")
    modes: str = opt("fast,quality", "selective-search modes, comma-separated")
    tops: str = opt("100,500,2000", "numbers of proposals kept (the first N), comma-separated")
    max_proposals: int = opt(2000, "cap on selective-search proposals per image")
    windows: bool = opt(True, "add the sliding-window pyramid (dcv detect's defaults) as the brute-force row")
    scene_seed: int = opt(1, "seed of the scenes (1: the test scenes dcv detect train evaluates on)")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    workers: int = opt(0, "processes for selective search (0: one per core); seconds/image are per process")
    progress: bool = opt(True, "show progress bars")


def _ints(spec: str, name: str) -> list[int]:
    try:
        vals = sorted({int(v) for v in spec.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"--{name} '{spec}': give comma-separated integers") from None
    if not vals or vals[0] < 1:
        raise ConfigError(f"--{name} '{spec}': give positive integers")
    return vals


def bench_proposals(cfg: BenchProposalsConfig, out_dir: Path | None = None,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every method; returns (and writes as bench.json, table.md, recall.png) the rows."""
    from dcvkit.data import named
    from dcvkit.data.scenes import SceneConfig, fashion_scenes

    tops = _ints(cfg.tops, "tops")
    modes = [m.strip() for m in cfg.modes.split(",") if m.strip()]
    for m in modes:
        SelectiveSearch(m)  # validates the name
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "proposals", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    _, items = named.load("fashion-mnist", cfg.data_dir)
    scenes = fashion_scenes(items, cfg.scenes, SceneConfig(), seed=cfg.scene_seed)
    methods: list[tuple[str, Any]] = [(f"selective search ({m})", SelectiveSearch(m, cfg.max_proposals)) for m in modes]
    if cfg.windows:
        methods.append(("sliding windows", SlidingWindows(sizes=(32, 44), ratios=(0.6, 1.0, 1.6), stride=8)))
    rows = []
    for name, proposer in methods:
        log(f"{name}: {cfg.scenes} scenes")
        ps = propose_all(scenes.images, proposer, workers=cfg.workers or None, cache=False, progress=cfg.progress,
                         desc=name)
        if isinstance(proposer, SlidingWindows):  # timed here: the windows are the same for every image
            import time

            t0 = time.perf_counter()
            for _ in range(20):
                proposer(scenes.images[0])
            ps.seconds = [(time.perf_counter() - t0) / 20] * len(ps.boxes)
        n_mean = sum(len(b) for b in ps.boxes) / len(ps.boxes)
        row: dict[str, Any] = {"method": name, "proposals_per_image": round(n_mean, 1),
                               "seconds_per_image": ps.seconds_per_image, "recall": {}}
        for top in tops:
            row["recall"][str(top)] = {"0.5": recall(scenes.boxes, ps.boxes, 0.5, top),
                                       "0.7": recall(scenes.boxes, ps.boxes, 0.7, top)}
        row["recall"]["all"] = {"0.5": recall(scenes.boxes, ps.boxes, 0.5), "0.7": recall(scenes.boxes, ps.boxes, 0.7)}
        rows.append(row)
    result = {"scenes": cfg.scenes, "objects": sum(len(b) for b in scenes.boxes), "tops": tops, "rows": rows,
              "threads_per_process": 1, "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    plot_recall(result, out_dir / "recall.png")
    return result


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in result["rows"]:
        row = {"method": r["method"], "proposals/img": f"{r['proposals_per_image']:.0f}",
               "s/img": f"{r['seconds_per_image']:.4f}"}
        for top in result["tops"]:
            rc = r["recall"][str(top)]
            row[f"recall@{top} (0.5 / 0.7)"] = f"{rc['0.5']:.3f} / {rc['0.7']:.3f}"
        rows.append(row)
    return rows


def plot_recall(result: dict[str, Any], path: Path) -> None:
    from dcvkit.viz.plots import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, thr in zip(axes, ("0.5", "0.7")):
        for r in result["rows"]:
            xs = [t for t in result["tops"]]
            ax.plot(xs, [r["recall"][str(t)][thr] for t in xs], "-o", ms=4,
                    label=f"{r['method']} ({r['seconds_per_image'] * 1000:.0f} ms/img)")
        ax.set_xscale("log")
        ax.set_xlabel("proposals kept per image")
        ax.set_title(f"recall of ground-truth boxes at IoU {thr}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall")
    axes[0].set_ylim(0, 1.02)
    axes[1].legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


__all__ = ["BenchProposalsConfig", "bench_proposals", "table_rows"]
