"""The course's training claims as reproducible experiments: ``dcv experiment <name>``.

Each experiment trains a few variants that differ in one thing, on Fashion-MNIST, and writes into
``runs/experiment/<name>/<run>/``: one run directory per variant, ``results.json`` (every number),
``<name>.png`` (the figure) and ``verdict.md`` (a short verdict computed from those numbers; nothing is
written in advance).

* ``dropout``: the same CNN with and without dropout on a small training set; train/test gap.
* ``augmentation``: the same CNN with and without data augmentation on a small training set; train/test gap.
* ``lr-annealing``: a constant learning rate against step and cosine annealing.
* ``plain-vs-residual``: training error of plain20/plain56/resnet20/resnet56 (the ResNet paper's Fig. 1/6).
* ``transfer``: classes 5-9 from 50 images per class: from scratch, frozen pretrained features, fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.data.core import ImageTensors
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.tasks.classify import ClassifyConfig, TrainResult, evaluate, train
from dcvkit.viz.plots import plot_bars, plot_curves


@dataclass
class ExperimentConfig(RunConfig):
    """Experiment: data and device shared by every variant."""

    data: str = opt("fashion-mnist", "named dataset (or image folder)")
    data_dir: str | None = opt(None, "folder holding the named dataset's files")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    progress: bool = opt(True, "show progress bars and one line per epoch")


@dataclass
class Experiment:
    """What an experiment leaves behind, and where."""

    name: str
    out_dir: Path
    rows: list[dict[str, Any]]
    verdict: str
    figure: Path

    def save(self, extra: dict[str, Any] | None = None) -> None:
        write_json(self.out_dir / "results.json", {"experiment": self.name, "rows": self.rows,
                                                   "verdict": self.verdict, **(extra or {})})
        atomic_write(self.out_dir / "verdict.md", f"# {self.name}\n\n{self.verdict}\n".encode())


def finish(name: str, out: Path, rows: list[dict[str, Any]], verdict: str,
           plot: Callable[[Path], None], extra: dict[str, Any] | None = None) -> Experiment:
    """Draw the figure ``<name>.png`` with ``plot(path)`` and write results.json and verdict.md."""
    fig = out / f"{name}.png"
    plot(fig)
    exp = Experiment(name, out, rows, verdict, fig)
    exp.save(extra)
    return exp


def start(cfg: ExperimentConfig, name: str) -> Path:
    out = new_run_dir(Path(cfg.project) / "experiment" / name, cfg.name)
    write_yaml(out / "config.yaml", to_dict(cfg))
    return out


def variant(cfg: ExperimentConfig, out_dir: Path, label: str, log: Callable[[str], None], **options: Any
            ) -> TrainResult:
    """Train one variant into ``out_dir/label`` (no TensorBoard, no test-set pass: the experiment evaluates)."""
    log(f"--- {label} ---")
    base = dict(data=cfg.data, data_dir=cfg.data_dir, device=cfg.device, seed=cfg.seed, progress=cfg.progress,
                tensorboard=False, test=False)
    return train(ClassifyConfig(**{**base, **options}), run_dir=out_dir / label)


def accuracy_on(result: TrainResult, device: str, split: str = "test", weights: str = "last.pt") -> float:
    """Accuracy of a variant's final (or best) weights on one of its splits."""
    data = getattr(result.splits, split)
    return float(evaluate(result.run_dir / weights, data=data, device=device)["accuracy"])


def pts(x: float) -> str:
    """A difference of accuracies in percentage points, signed."""
    return f"{100 * x:+.1f} points"


def gap_row(result: TrainResult, device: str, **fields: Any) -> dict[str, Any]:
    """``fields`` plus the final weights' accuracy on the (plain, un-augmented) training images and on the
    test set, and the train/test gap."""
    train_acc, test_acc = accuracy_on(result, device, "train"), accuracy_on(result, device)
    return {**fields, "train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
            "train_images": len(result.splits.train)}


def gap_verdict(regulariser: str, setting: str, epochs: int, a: dict[str, Any], b: dict[str, Any]) -> str:
    """The verdict of a with/without comparison of a regulariser from two :func:`gap_row` rows."""
    narrowed = b["gap"] < a["gap"]
    return (f"On {a['train_images']} training images, {epochs} epochs: without {regulariser} the model reaches "
            f"{a['train_acc']:.4f} on its training set and {a['test_acc']:.4f} on the test set (gap "
            f"{100 * a['gap']:.1f} points); with {setting}, {b['train_acc']:.4f} and {b['test_acc']:.4f} (gap "
            f"{100 * b['gap']:.1f} points). {regulariser.capitalize()} "
            + (f"narrowed the train/test gap by {100 * (a['gap'] - b['gap']):.1f} points" if narrowed
               else "did not narrow the train/test gap here")
            + f" and changed test accuracy by {pts(b['test_acc'] - a['test_acc'])}.")


# --- dropout -------------------------------------------------------------------------------------------


@dataclass
class DropoutConfig(ExperimentConfig):
    """Dropout: the same network with and without dropout on a small training set."""

    model: str = opt("cnn", "model")
    per_class: int = opt(200, "training images per class (a small set overfits)")
    epochs: int = opt(40, "epochs (long enough to overfit)")
    dropout: float = opt(0.5, "dropout probability of the regularised variant")
    lr: float = opt(0.05, "peak learning rate")


def dropout_experiment(cfg: DropoutConfig, log: Callable[[str], None] = print) -> Experiment:
    out = start(cfg, "dropout")
    rows, histories = [], {}
    for p in (0.0, cfg.dropout):
        label = f"dropout {p:g}"
        r = variant(cfg, out, f"dropout_{p:g}", log, model=cfg.model, dropout=p, per_class=cfg.per_class,
                    epochs=cfg.epochs, lr=cfg.lr, weight_decay=0.0, val_split=0.1)
        rows.append(gap_row(r, cfg.device, variant=label, dropout=p))
        histories[label] = r.fit.history
    a, b = rows
    verdict = gap_verdict("dropout", f"dropout {cfg.dropout:g}", cfg.epochs, a, b)
    keys = [("train_acc", "training accuracy (dropout active)"), ("val_acc", "validation accuracy")]
    title = f"{cfg.model} on {a['train_images']} images: with and without dropout"
    return finish("dropout", out, rows, verdict, lambda f: plot_curves(histories, keys, f, title=title))


# --- data augmentation ---------------------------------------------------------------------------------

DEFAULT_AUGMENT = ("rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1, "
                   "horizontal_flip=true")


@dataclass
class AugmentationConfig(ExperimentConfig):
    """Data augmentation: the same network with and without augmentation on a small training set."""

    model: str = opt("cnn", "model")
    per_class: int = opt(100, "training images per class (1,000 in all: a small set overfits)")
    epochs: int = opt(40, "epochs (long enough to overfit)")
    augment: str = opt(DEFAULT_AUGMENT, "the augmentation (YAML file or inline options, as --augment)")
    dropout: float = opt(0.0, "dropout of both variants (0: augmentation is the only regulariser)")
    lr: float = opt(0.05, "peak learning rate")
    batch_size: int = opt(32, "batch size (small: enough steps on a small set)")


def augmented_copy(data: ImageTensors, augment: str, seed: int) -> ImageTensors:
    """The images of ``data`` through the augmentation's random part once (fixed draws), back to uint8."""
    from dcvkit.augment import Augmenter, parse_augment

    aug = Augmenter(parse_augment(augment), seed)
    images = torch.cat([aug.augment(data.images[i:i + 1024]).images for i in range(0, len(data), 1024)])
    return ImageTensors(images.round().clamp(0, 255).to(torch.uint8), data.labels, data.classes)


def augmentation_experiment(cfg: AugmentationConfig, log: Callable[[str], None] = print) -> Experiment:
    out = start(cfg, "augmentation")
    rows, histories = [], {}
    moved_test = None
    for label, augment in (("no augmentation", None), ("augmentation", cfg.augment)):
        r = variant(cfg, out, label.replace(" ", "_"), log, model=cfg.model, augment=augment, dropout=cfg.dropout,
                    per_class=cfg.per_class, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                    weight_decay=0.0, val_split=0.1)
        # the same test images moved by the augmentation once: does the model cope with what it never saw?
        if moved_test is None:
            moved_test = augmented_copy(r.splits.test, cfg.augment, cfg.seed + 1)
        moved_acc = float(evaluate(r.run_dir / "last.pt", data=moved_test, device=cfg.device)["accuracy"])
        rows.append(gap_row(r, cfg.device, variant=label, augment=augment, augmented_test_acc=moved_acc))
        histories[label] = r.fit.history
    a, b = rows
    verdict = (gap_verdict("augmentation", f"augmentation ({cfg.augment})", cfg.epochs, a, b)
               + f" On the test images moved once by the same augmentation, accuracy is "
               f"{a['augmented_test_acc']:.4f} without and {b['augmented_test_acc']:.4f} with augmentation "
               f"({pts(b['augmented_test_acc'] - a['augmented_test_acc'])}).")
    keys = [("train_acc", "training accuracy (on augmented batches)"), ("val_acc", "validation accuracy")]
    title = f"{cfg.model} on {a['train_images']} images: with and without augmentation"
    return finish("augmentation", out, rows, verdict, lambda f: plot_curves(histories, keys, f, title=title))


# --- learning-rate annealing ---------------------------------------------------------------------------


@dataclass
class AnnealingConfig(ExperimentConfig):
    """Learning-rate annealing: constant against step and cosine schedules."""

    model: str = opt("cnn", "model")
    limit: int = opt(10000, "training images (before the validation split)")
    epochs: int = opt(12, "epochs")
    lr: float = opt(0.1, "the constant learning rate, and the starting one of the annealed schedules")
    schedules: str = opt("none,step,cosine", "schedules to compare (none = constant)")


def annealing_experiment(cfg: AnnealingConfig, log: Callable[[str], None] = print) -> Experiment:
    out = start(cfg, "lr-annealing")
    rows, histories = [], {}
    for name in [s.strip() for s in cfg.schedules.split(",") if s.strip()]:
        label = "constant" if name == "none" else name
        r = variant(cfg, out, label, log, model=cfg.model, limit=cfg.limit, epochs=cfg.epochs, lr=cfg.lr,
                    scheduler=name, step_size=max(1, cfg.epochs // 3), gamma=0.1)
        last = r.fit.history[-1]
        rows.append({"schedule": label, "test_acc": accuracy_on(r, cfg.device), "final_train_loss": last["train_loss"],
                     "final_val_loss": last.get("val_loss"), "final_lr": last["lr"]})
        histories[label] = r.fit.history
    const = next((r for r in rows if r["schedule"] == "constant"), rows[0])
    best = max(rows, key=lambda r: r["test_acc"])
    parts = [f"{r['schedule']}: test accuracy {r['test_acc']:.4f}, final training loss {r['final_train_loss']:.4f}"
             for r in rows]
    verdict = (f"{cfg.epochs} epochs on {cfg.limit} images starting at lr {cfg.lr:g}. " + "; ".join(parts) + ". "
               + (f"Best: {best['schedule']}, {pts(best['test_acc'] - const['test_acc'])} over the constant rate."
                  if best is not const else "Annealing did not beat the constant rate in this run."))
    keys = [("lr", "learning rate"), ("train_loss", "training loss"), ("val_acc", "validation accuracy")]
    return finish("lr-annealing", out, rows, verdict,
                  lambda f: plot_curves(histories, keys, f, title="constant learning rate vs annealing"))


# --- plain vs residual ---------------------------------------------------------------------------------


@dataclass
class DegradationConfig(ExperimentConfig):
    """Plain vs residual: the degradation problem of deep plain networks."""

    models: str = opt("plain20,plain56,resnet20,resnet56", "networks to compare")
    limit: int | None = opt(6000, "training images (before the validation split); empty for all")
    epochs: int = opt(8, "epochs")
    lr: float = opt(0.1, "peak learning rate (one-cycle)")
    width: float | None = opt(None, "channel-width multiplier")


def degradation_experiment(cfg: DegradationConfig, log: Callable[[str], None] = print) -> Experiment:
    out = start(cfg, "plain-vs-residual")
    rows, histories = [], {}
    for m in [s.strip() for s in cfg.models.split(",") if s.strip()]:
        r = variant(cfg, out, m, log, model=m, limit=cfg.limit, epochs=cfg.epochs, lr=cfg.lr, width=cfg.width,
                    weight_decay=1e-4)
        for h in r.fit.history:
            h["train_err"] = 1 - h["train_acc"]
            h["val_err"] = 1 - h.get("val_acc", float("nan"))
        errs = [h["train_err"] for h in r.fit.history]
        rows.append({"model": m, "final_train_err": errs[-1], "mean_train_err": sum(errs) / len(errs),
                     "test_err": 1 - accuracy_on(r, cfg.device), "train_err_per_epoch": errs})
        histories[m] = r.fit.history
    by = {r["model"]: r for r in rows}
    lines = [f"{r['model']}: final training error {100 * r['final_train_err']:.2f}%, mean over epochs "
             f"{100 * r['mean_train_err']:.2f}%, test error {100 * r['test_err']:.2f}%" for r in rows]
    claims = []
    if {"plain20", "plain56"} <= by.keys():
        worse = by["plain56"]["final_train_err"] > by["plain20"]["final_train_err"]
        claims.append("the deeper plain network trains worse (degradation)" if worse
                      else "no degradation: plain56 trained at least as well as plain20")
    if {"plain56", "resnet56"} <= by.keys():
        above = by["plain56"]["final_train_err"] > by["resnet56"]["final_train_err"]
        claims.append(("plain56's training error ends above resnet56's "
                       f"({100 * by['plain56']['final_train_err']:.2f}% vs {100 * by['resnet56']['final_train_err']:.2f}%): "
                       "shortcuts fix it") if above else "resnet56 did not train better than plain56 here")
    verdict = "; ".join(lines) + ". " + ("; ".join(claims).capitalize() + "." if claims else "")
    keys = [("train_err", "training error"), ("val_err", "validation error")]
    return finish("plain-vs-residual", out, rows, verdict, lambda f: plot_curves(
        histories, keys, f, title="plain vs residual networks (dashed: plain)", dashed=lambda k: k.startswith("plain")))


# --- transfer learning ---------------------------------------------------------------------------------


@dataclass
class TransferConfig(ExperimentConfig):
    """Transfer: pretrain on classes 0-4, learn classes 5-9 from a few images per class."""

    model: str = opt("cnn", "model")
    source_classes: str = opt("0-4", "classes to pretrain on")
    target_classes: str = opt("5-9", "classes to learn from few images")
    per_class: int = opt(50, "training images per target class")
    pretrain_epochs: int = opt(10, "epochs on the source classes (all their training images)")
    epochs: int = opt(30, "epochs on the small target set")
    lr: float = opt(0.05, "peak learning rate on the target set")
    backbone_lr: float = opt(0.1, "learning-rate factor of the backbone in the extra 'fine-tuning, low backbone "
                                  "lr' variant (the 'fine-tuning' variant trains all layers at --lr)")


def transfer_experiment(cfg: TransferConfig, log: Callable[[str], None] = print) -> Experiment:
    out = start(cfg, "transfer")
    pre = variant(cfg, out, "pretrain", log, model=cfg.model, classes=cfg.source_classes, epochs=cfg.pretrain_epochs,
                  lr=0.1, hflip=True)
    pre_acc = accuracy_on(pre, cfg.device, weights="best.pt")
    small = dict(model=cfg.model, classes=cfg.target_classes, per_class=cfg.per_class, val_split=0.0,
                 epochs=cfg.epochs, lr=cfg.lr, batch_size=64)
    weights = str(pre.run_dir)
    variants = {"scratch": {}, "frozen features": dict(pretrained=weights, freeze_backbone=True),
                "fine-tuning": dict(pretrained=weights, backbone_lr=1.0),
                f"fine-tuning, backbone lr x{cfg.backbone_lr:g}": dict(pretrained=weights, backbone_lr=cfg.backbone_lr)}
    rows, histories = [], {}
    for label, extra in variants.items():
        r = variant(cfg, out, label.replace(" ", "_"), log, **small, **extra)
        rows.append({"variant": label, "test_acc": accuracy_on(r, cfg.device), "train_images": len(r.splits.train)})
        histories[label] = r.fit.history
    by = {r["variant"]: r["test_acc"] for r in rows}
    low = by[f"fine-tuning, backbone lr x{cfg.backbone_lr:g}"]
    n = rows[0]["train_images"]
    verdict = (f"Pretrained on classes {cfg.source_classes} (test accuracy {pre_acc:.4f} there), then classes "
               f"{cfg.target_classes} from {n} images ({cfg.per_class} per class), tested on all their test images: "
               f"from scratch {by['scratch']:.4f}, frozen pretrained features {by['frozen features']:.4f}, "
               f"fine-tuning {by['fine-tuning']:.4f}. "
               + (f"Fine-tuning beats training from scratch by {pts(by['fine-tuning'] - by['scratch'])}."
                  if by["fine-tuning"] > by["scratch"] else
                  f"Fine-tuning does not beat training from scratch here ({pts(by['fine-tuning'] - by['scratch'])}).")
               + f" With the backbone at {cfg.backbone_lr:g}x the learning rate, fine-tuning reaches {low:.4f} "
               + f"({pts(low - by['fine-tuning'])} against the same rate for all layers).")
    bars = {r["variant"].replace(", ", ",\n"): r["test_acc"] for r in rows}
    title = f"classes {cfg.target_classes} from {cfg.per_class} images per class"
    return finish("transfer", out, rows, verdict, lambda f: plot_bars(bars, f, ylabel="test accuracy", title=title),
                  {"pretrain_test_acc": pre_acc})


EXPERIMENTS: dict[str, tuple[type[ExperimentConfig], Callable[..., Experiment], str]] = {
    "dropout": (DropoutConfig, dropout_experiment, "train/test gap with and without dropout on a small set"),
    "augmentation": (AugmentationConfig, augmentation_experiment,
                     "train/test gap with and without data augmentation on a small set"),
    "lr-annealing": (AnnealingConfig, annealing_experiment, "constant learning rate vs step and cosine annealing"),
    "plain-vs-residual": (DegradationConfig, degradation_experiment,
                          "training error of plain vs residual networks at depth 20 and 56"),
    "transfer": (TransferConfig, transfer_experiment,
                 "scratch vs frozen features vs fine-tuning on 50 images per class"),
}
