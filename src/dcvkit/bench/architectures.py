"""``dcv bench architectures``: every classic architecture trained on Fashion-MNIST under the same wall-clock budget.

For each model: parameters, forward FLOPs per image (``torch.utils.flop_counter``: 2 per multiply-add),
training images/s, and the test accuracy reached within ``--budget-minutes`` of training, beside the figure
the Fashion-MNIST benchmark table publishes for that family (trained to convergence, typically on GPUs).

The budget becomes a number of epochs before training starts: a few timed steps measure the model's
throughput on this machine, and the run gets as many epochs as fit (or, for a model too slow for one
epoch, one epoch over the random subset of the training set that fits), so that the learning-rate
schedule anneals fully inside the budget. The same recipe for all: SGD with Nesterov momentum, one-cycle
schedule, label smoothing 0.1, random horizontal flips, batch 128 (AlexNet, which has no batch norm, gets
a 5x lower learning rate).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.data import load_dataset
from dcvkit.engine import resolve_device
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.models import create_model
from dcvkit.viz.report import markdown_table

# Test accuracy on Fashion-MNIST from the benchmark table of github.com/zalandoresearch/fashion-mnist
# (the "Benchmark" section: submitted models, without/with preprocessing as listed there).
PUBLISHED: dict[str, tuple[str, float]] = {
    "cnn": ("2 Conv+pooling", 0.916),
    "alexnet": ("AlexNet", 0.899),
    "vgg11": ("VGG16", 0.935),
    "vgg16": ("VGG16", 0.935),
    "googlenet": ("GoogLeNet", 0.937),
    "resnet18": ("ResNet18", 0.949),
    "resnet34": ("ResNet18", 0.949),
    "resnet20": ("ResNet18", 0.949),
    "resnet56": ("ResNet18", 0.949),
}
HUMAN = 0.835
LR_FACTOR = {"alexnet": 0.1}  # no batch norm: the shared peak lr is too high for it
VAL_SPLIT = 0.1


@dataclass
class BenchArchitecturesConfig(RunConfig):
    """Benchmark: which models, how long each trains."""

    data: str = opt("fashion-mnist", "named dataset")
    data_dir: str | None = opt(None, "folder holding the dataset's files")
    models: str = opt("cnn,alexnet,vgg16,googlenet,resnet18,resnet20", "comma-separated registry models")
    budget_minutes: float = opt(6.0, "training wall-clock budget per model (sized for 2 CPU cores)")
    batch_size: int = opt(128, "images per step")
    lr: float = opt(0.1, "peak learning rate of the one-cycle schedule")
    width: float | None = opt(None, "channel-width multiplier for every model (default: each model's own)")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    calibration_steps: int = opt(8, "timed steps that measure each model's throughput before it trains")
    max_epochs: int = opt(30, "at most this many epochs, however fast the model")
    progress: bool = opt(True, "show progress bars and one line per epoch")


def flops_per_image(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one input of ``shape`` (C, H, W), counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    model.train(was)
    return int(counter.get_total_flops())


def training_throughput(model: nn.Module, shape: tuple[int, ...], num_classes: int, batch_size: int,
                        steps: int, device: torch.device, warmup: int = 5, dense: bool = False) -> float:
    """Images/s of SGD training steps on random data (after ``warmup`` untimed steps), on a copy of
    ``model``; ``dense``: one label per pixel (segmentation) instead of one per image."""
    import copy

    m = copy.deepcopy(model).to(device).train()
    fmt = torch.channels_last if len(shape) == 3 else torch.contiguous_format
    m = m.to(memory_format=fmt)
    x = torch.randn(batch_size, *shape, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, num_classes, (batch_size, *(shape[1:] if dense else ())), device=device)
    opt_ = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with amp:
            loss = F.cross_entropy(m(x), y)
        opt_.zero_grad(set_to_none=True)
        loss.backward()
        opt_.step()

    for _ in range(warmup):  # cuDNN autotuning and allocator warm-up happen here, not in the timing
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def plan_budget(budget_s: float, images_per_s: float, n_train: int, val_split: float) -> tuple[int, int | None]:
    """(epochs, ``--limit`` or None) that fit ``budget_s`` for ``n_train`` images before the validation split.

    A validation image (forward only) costs about a third of a training image; 10% of the budget is kept
    for start-up and the test-set evaluation. A model too slow for one epoch trains one epoch on a subset.
    """
    usable = 0.9 * budget_s * images_per_s
    per_image = (1 - val_split) + val_split / 3
    if usable >= n_train * per_image:
        return int(usable // (n_train * per_image)), None
    return 1, max(256, int(usable / per_image))


def bench_architectures(cfg: BenchArchitecturesConfig, out_dir: Path | None = None,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train each model within the budget; returns (and writes as ``bench.json``) one row per model."""
    from dcvkit.tasks.classify import ClassifyConfig, train

    device = resolve_device(cfg.device)
    splits = load_dataset(cfg.data, data_dir=cfg.data_dir, val_split=0.0, seed=cfg.seed)
    shape = (splits.channels, *splits.img_size)
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "architectures", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    rows: list[dict[str, Any]] = []
    for name in [m.strip() for m in cfg.models.split(",") if m.strip()]:
        extra = {"width": cfg.width} if cfg.width is not None else {}
        torch.manual_seed(cfg.seed)
        model = create_model(name, num_classes=splits.num_classes, in_chans=splits.channels,
                             img_size=splits.img_size, **extra).to(device)
        params = sum(p.numel() for p in model.parameters())
        flops = flops_per_image(model, shape)
        ips = training_throughput(model, shape, splits.num_classes, cfg.batch_size, cfg.calibration_steps, device)
        epochs, limit = plan_budget(cfg.budget_minutes * 60, ips, len(splits.train), VAL_SPLIT)
        epochs = min(epochs, cfg.max_epochs)
        seen = f"{epochs} epochs" if limit is None else f"{limit:,} of {len(splits.train):,} images, 1 epoch"
        log(f"{name}: {params / 1e6:.2f}M params, {flops / 1e6:.0f} MFLOPs/image, ~{ips:.0f} images/s -> {seen}")
        tcfg = ClassifyConfig(
            data=cfg.data, data_dir=cfg.data_dir, model=name, seed=cfg.seed, epochs=epochs, limit=limit,
            val_split=VAL_SPLIT,
            batch_size=cfg.batch_size, lr=cfg.lr * LR_FACTOR.get(name, 1.0), label_smoothing=0.1, hflip=True,
            device=cfg.device, tensorboard=False, width=cfg.width, progress=cfg.progress)
        t0 = time.perf_counter()
        result = train(tcfg, run_dir=out_dir / name)
        wall = time.perf_counter() - t0
        hist = result.fit.history
        family, published = PUBLISHED.get(name, ("", None))
        n_train = len(splits.train) * (1 - VAL_SPLIT)
        train_images = len(result.splits.train) * epochs
        rows.append({
            "model": name, "params": params, "mflops": flops / 1e6,
            "images_per_s": sorted(h["images_per_s"] for h in hist)[len(hist) // 2],
            "epochs": round(train_images / n_train, 2), "train_s": round(result.fit.seconds, 1),
            "wall_s": round(wall, 1), "test_acc": result.test["accuracy"] if result.test else math.nan,
            "published_family": family, "published_acc": published,
        })
        log(f"{name}: test accuracy {rows[-1]['test_acc']:.4f} (published {family or '-'}: {published}) "
            f"in {wall:.0f}s")
        del model
    best = max(rows, key=lambda r: r["test_acc"]) if rows else None
    results = {"config": to_dict(cfg), "device": str(device), "threads": torch.get_num_threads(), "rows": rows,
               "human": HUMAN, "best": best["model"] if best else None}
    write_json(out_dir / "bench.json", results)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(results)).encode())
    plot_architectures(rows, out_dir / "accuracy.png")
    results["out_dir"] = str(out_dir)
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model": r["model"], "params (M)": f"{r['params'] / 1e6:.2f}", "MFLOPs/img": f"{r['mflops']:.1f}",
             "train img/s": f"{r['images_per_s']:.0f}", "epochs": f"{r['epochs']:.2f}",
             "test acc": f"{r['test_acc']:.4f}",
             "published": f"{r['published_acc']:.3f} ({r['published_family']})" if r["published_acc"] else "-"}
            for r in results["rows"]] + [{"model": "human", "params (M)": "-", "MFLOPs/img": "-",
                                          "train img/s": "-", "epochs": "-", "test acc": "-",
                                          "published": f"{results['human']:.3f}"}]


def plot_architectures(rows: list[dict[str, Any]], path: Path) -> None:
    """Test accuracy within the budget (bars) beside the published figure (ticks), models by FLOPs."""
    from dcvkit.viz.plots import plt, save_figure

    rows = sorted(rows, key=lambda r: r["mflops"])
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(rows), 3.6))
    xs = range(len(rows))
    ax.bar(xs, [r["test_acc"] for r in rows], color="#4c72b0", label="measured, within budget")
    pub = [(x, r["published_acc"]) for x, r in zip(xs, rows) if r["published_acc"]]
    if pub:
        ax.scatter(*zip(*pub), marker="_", s=900, color="#c44e52", label="published (full training)")
    ax.axhline(HUMAN, ls=":", color="gray", label=f"human {HUMAN}")
    ax.set_xticks(list(xs), [f"{r['model']}\n{r['mflops']:.0f} MFLOPs" for r in rows], fontsize=8)
    low = min([r["test_acc"] for r in rows] + [HUMAN])
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)
