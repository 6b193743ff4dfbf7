"""``dcv quickstart``: the prototypical CNN against the classical baselines on Fashion-MNIST.

Trains the CNN (``runs/quickstart/<name>/cnn``), fits the baselines on the same training split, and writes
``report.html`` (self-contained): the comparison table, training curves, confusion matrix and sample
predictions. Default settings take about 6 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from dcvkit.classical.baselines import BASELINES, BaselineResult, resolve_names, run_baselines
from dcvkit.config import opt, to_dict
from dcvkit.io import new_run_dir, write_json, write_yaml
from dcvkit.tasks.classify import ClassifyConfig, TrainResult, train
from dcvkit.viz.report import Report

# Published Fashion-MNIST accuracy of a "2 Conv + pooling" network (the benchmark table's entry).
PUBLISHED_CNN = 0.916


@dataclass
class QuickstartConfig(ClassifyConfig):
    """Quickstart: the CNN's training settings and which baselines to run beside it."""

    epochs: int = opt(12, "CNN training epochs")
    lr: float = opt(0.1, "peak learning rate (one-cycle schedule)")
    label_smoothing: float = opt(0.1, "label smoothing")
    hflip: bool = opt(True, "random horizontal flips")
    tensorboard: bool = opt(True, "write TensorBoard events")
    baselines: str = opt("all", "classical baselines to compare (comma-separated names, or all, or none)")
    svm_limit: int | None = opt(10_000, "train the SVM on at most this many images")


@dataclass
class QuickstartResult:
    run_dir: Path
    report: Path
    cnn: TrainResult
    baselines: list[BaselineResult]
    rows: list[dict[str, Any]]


def quickstart(cfg: QuickstartConfig) -> QuickstartResult:
    run_dir = new_run_dir(Path(cfg.project) / "quickstart", cfg.name)
    write_yaml(run_dir / "config.yaml", to_dict(cfg))
    ccfg = ClassifyConfig(**{f.name: getattr(cfg, f.name) for f in fields(ClassifyConfig)})
    cnn = train(ccfg, run_dir=run_dir / "cnn")
    assert cnn.test is not None, "quickstart needs a dataset with a test split"
    from dcvkit.engine.loop import console

    names = [] if cfg.baselines == "none" else resolve_names(cfg.baselines)
    if names:
        console.print(f"classical baselines: {', '.join(names)}", highlight=False)
    results = run_baselines(
        cnn.splits.train, cnn.splits.test, names, limits={"svm": cfg.svm_limit} if cfg.svm_limit else {},
        seed=cfg.seed, on_result=lambda r: console.print(
            f"  {r.model}: test accuracy {r.test_accuracy:.4f} (fit {r.fit_s:.1f}s)", highlight=False),
        dataset=cnn.splits.name)

    rows = [{"model": f"{cfg.model} (CNN)", "train images": f"{len(cnn.splits.train):,}",
             "test accuracy": cnn.test["accuracy"],
             "published": PUBLISHED_CNN if cnn.splits.name == "fashion-mnist" else None,
             "fit s": round(cnn.fit.seconds, 1), "predict s": cnn.test["predict_s"]}]
    rows += [{"model": r.model, "train images": f"{r.train_images:,}", "test accuracy": r.test_accuracy,
              "published": r.paper_accuracy, "fit s": r.fit_s, "predict s": r.predict_s} for r in results]
    rows.sort(key=lambda r: -r["test accuracy"])
    write_json(run_dir / "summary.json", {"rows": rows, "cnn_test": {k: v for k, v in cnn.test.items()
                                                                      if not k.startswith("_")}})
    report = _report(cfg, cnn, rows, run_dir)
    return QuickstartResult(run_dir, report, cnn, results, rows)


def _report(cfg: QuickstartConfig, cnn: TrainResult, rows: list[dict[str, Any]], run_dir: Path) -> Path:
    rep = Report(f"dcvkit quickstart: deep vs classical on {cnn.splits.name}")
    rep.text(f"{cnn.splits.summary()}. Every model is trained on the same {len(cnn.splits.train):,} training "
             f"images and scored on the same {len(cnn.splits.test):,} test images. Seed {cfg.seed}.")
    rep.heading("Comparison")
    rep.table(rows, highlight=0)
    best = rows[0]
    classical = [r for r in rows if "(CNN)" not in r["model"]]
    if classical:
        gap = cnn.test["accuracy"] - max(r["test accuracy"] for r in classical)
        rep.text(f"Best: {best['model']} at {best['test accuracy']:.4f}. The CNN is "
                 f"{abs(gap) * 100:.1f} points {'above' if gap >= 0 else 'below'} the best classical baseline.")
    rep.text("'published': the Fashion-MNIST benchmark's accuracy for the same method and settings "
             "(for the CNN, the benchmark's '2 Conv+pooling' entry). Baselines use "
             + "; ".join(f"{b.name}: {b.settings}" for b in BASELINES.values()) + ".", note=True)
    fit = cnn.fit
    rep.heading("CNN training")
    rep.text(f"{cfg.model}, {fit.epochs_run} epochs, {cfg.optimizer} lr {cfg.lr} with {cfg.scheduler} schedule, "
             f"batch {cfg.batch_size}; best val_acc {fit.best:.4f} at epoch {fit.best_epoch}; "
             f"{fit.seconds:.0f}s. Run directory: {cnn.run_dir}")
    smoothing = f" (train loss includes label smoothing {cfg.label_smoothing}; val loss is plain cross-entropy)" \
        if cfg.label_smoothing else ""
    rep.image(cnn.run_dir / "curves.png", f"loss, accuracy and learning rate per epoch{smoothing}")
    rep.heading("Confusion matrix (test set)")
    rep.image(cnn.run_dir / "confusion_matrix.png", "rows: true class; columns: predicted class")
    rep.table([{k: v for k, v in r.items()} for r in cnn.test["per_class"]], floatfmt=".3f")
    rep.heading("Sample predictions (test set)")
    rep.image(cnn.run_dir / "predictions.png", "prediction and probability; red = wrong")
    _explain_section(rep, cnn, run_dir / "explain")
    return rep.write(run_dir / "report.html")


def _explain_section(rep: Report, cnn: TrainResult, out_dir: Path) -> None:
    """What the CNN looks at: saliency maps of the first test image and the feature maps of its blocks
    (``dcv explain saliency|features`` on the run make the same pictures for any image)."""
    from dcvkit.explain.model import load_explainable
    from dcvkit.explain.report import explain_features, explain_saliency

    ex = load_explainable(cnn.run_dir / "best.pt", "cpu")
    test = cnn.splits.test
    image, label = test.images[0].float() / 255.0, test.classes[int(test.labels[0])]
    maps = explain_saliency(ex, [(image, f"test0_{label}")], ["perturbation", "gradient", "occlusion", "gradcam"],
                            out_dir, log=lambda _m: None)[0]
    pert = maps[0]
    rep.heading("What the CNN looks at (test image 0)")
    rep.image(next(out_dir.glob("*.png")), (
        f"true class {label}; explained class {pert.class_name} (p = {pert.probability:.3f}). Perturbation: the "
        f"course's algorithm, every pixel moved by +-1, 2, 4 / 255, {pert.info['forward_passes']:,} forward "
        f"passes ({pert.info['engine']} engine, {pert.seconds:.2f} s); gradient: its small-step limit; occlusion: "
        "the drop in probability under a 4x4 grey patch; Grad-CAM: the last conv block. "
        f"Reproduce: dcv explain saliency {cnn.run_dir} --index 0 --method all"))
    paths = explain_features(ex, image, out_dir, stem=f"test0_{label}")
    rep.image(paths[0], f"every channel of the first conv block ({ex.model.feature_layers[0]}) for the same image; "
                        f"more layers: dcv explain features {cnn.run_dir} --index 0")
    rep.image(paths[-1], "the first convolution's filters")
