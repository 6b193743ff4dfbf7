"""Classical ML baselines (scikit-learn) on the same splits as the deep models."""

from dcvkit.classical.baselines import BASELINES, BaselineConfig, BaselineResult, baseline, resolve_names, run_baselines

__all__ = ["BASELINES", "BaselineConfig", "BaselineResult", "baseline", "run_baselines", "resolve_names"]
