"""``dcv baseline``: the course's classical methods on the same split as the CNN."""

from __future__ import annotations

import argparse

from dcvkit.config import add_config_arguments, resolve


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.classical import BaselineConfig

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Logistic regression, decision tree, random forest, SVM and Gaussian naive Bayes on standardised "
        "pixels, with the Fashion-MNIST benchmark's settings, trained on the same train split as the CNN and "
        "scored on the test set. Prints test accuracy beside the benchmark's, fit and predict seconds.\n"
        "example: dcv baseline --data fashion-mnist --models lr,rf,nb")
    add_config_arguments(p, BaselineConfig, skip=("img_size", "channels", "skip_bad"))
    p.set_defaults(func=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> int:
    from dcvkit.classical import BaselineConfig, baseline
    from dcvkit.cli.output import err, out, print_table

    cfg = resolve(BaselineConfig, args)
    run_dir, results = baseline(cfg, on_result=lambda r: err.print(
        f"{r.model}: test accuracy {r.test_accuracy:.4f} (fit {r.fit_s:.1f}s, predict {r.predict_s:.1f}s)"))
    paper = any(r.paper_accuracy is not None for r in results)  # the benchmark's figures: Fashion-MNIST only
    print_table([{"model": r.model, "settings": r.settings, "train images": f"{r.train_images:,}",
                  "test acc": r.test_accuracy, **({"paper": r.paper_accuracy} if paper else {}), "fit s": r.fit_s,
                  "predict s": r.predict_s} for r in results], title=f"classical baselines on {cfg.data}")
    out.print(f"run directory: {run_dir}")
    return 0
