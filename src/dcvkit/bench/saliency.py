"""``dcv bench saliency``: the course's perturbation saliency, the literal loop against dcvkit's engines.

On the same model (randomly initialised, eval mode, seeded) and the same random image:

* ``naive loop``: :func:`dcvkit.explain.reference.naive_perturbation_saliency`, one forward pass per
  perturbed copy. At large sizes it runs on the first ``--naive-values`` pixel values and its time is
  scaled to the whole image (said in the table).
* ``dcvkit batched``: whole perturbed copies, many per forward pass.
* ``dcvkit incremental``: only the windows each changed pixel reaches (plain CNNs).
* ``captum FeatureAblation``: each pixel value replaced by 0, one perturbation per value (fewer than the
  course's 2 x deltas), batched by captum; scaled like the naive loop at large sizes. Only when captum is
  installed (``pip install captum``).

Every engine's map is checked against the naive loop's on the values the loop computed. Writes
``bench.json`` and ``table.md``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.errors import ConfigError
from dcvkit.explain.model import Explainable, channel_affine
from dcvkit.explain.perturbation import perturbation_saliency, signed_deltas
from dcvkit.explain.reference import naive_perturbation_saliency
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml


@dataclass
class BenchSaliencyConfig(RunConfig):
    """Benchmark: models, image sizes, perturbation steps."""

    models: str = opt("cnn_tiny,cnn", "models timed on 28x28x1 images")
    large_model: str = opt("cnn_tiny", "the small CNN timed on --large-size RGB images")
    large_size: int = opt(224, "size of the RGB image (0: skip)")
    deltas: str = opt("1,2,4", "steps at 28x28 in 1/255 units, each with both signs (6 copies per value)")
    large_deltas: str = opt("1", "steps at the large size (1: +-1/255, 2 copies per value)")
    naive_values: int = opt(1000, "images with more pixel values than this: the naive loop, captum and the "
                                  "batched engine run on this many, and their times are scaled to the image")
    captum: bool = opt(True, "also time captum's FeatureAblation (when installed)")
    max_memory: float = opt(1024, "memory budget of one batch of copies, MB")
    repeats: int = opt(3, "timed runs of each dcvkit engine on images that the naive loop runs whole (after a "
                          "warm-up run; the median is reported)")


def _explainable(name: str, size: int, channels: int, seed: int) -> Explainable:
    from dcvkit.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, num_classes=10, in_chans=channels, img_size=size).eval()

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25

    return Explainable(model, normalise, [str(i) for i in range(10)], channel_affine(model, normalise, channels))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _captum(ex: Explainable, x: torch.Tensor, target: int, values: int | None) -> tuple[float, int]:
    """Seconds and forward passes of captum's FeatureAblation on the first ``values`` pixel values
    (all when None)."""
    from captum.attr import FeatureAblation

    mask = None
    if values is not None:  # the first `values` values are their own features, the rest one more feature
        mask = torch.full(x.shape, values, dtype=torch.long)
        mask.view(-1)[:values] = torch.arange(values)
        mask = mask[None]
    fa = FeatureAblation(lambda inp: ex.probs(inp))
    _, sec = _timed(lambda: fa.attribute(x[None], target=target, feature_mask=mask, perturbations_per_eval=256))
    return sec, (x.numel() if values is None else values + 1)


def bench_saliency(cfg: BenchSaliencyConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    out = new_run_dir(Path(cfg.project) / "bench" / "saliency", cfg.name)
    write_yaml(out / "config.yaml", to_dict(cfg))
    try:
        import captum  # noqa: F401
        has_captum = cfg.captum
    except ImportError:
        has_captum = False
        if cfg.captum:
            log("note: captum is not installed (pip install captum): its row is skipped")
    cases = [(m.strip(), 28, 1, cfg.deltas) for m in cfg.models.split(",") if m.strip()]
    if cfg.large_size:
        cases.append((cfg.large_model, cfg.large_size, 3, cfg.large_deltas))
    if not cases:
        raise ConfigError("--models and --large-size 0: nothing to measure")
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "cases": []}
    for name, size, channels, deltas_text in cases:
        deltas = [float(d) for d in deltas_text.split(",") if d.strip()]
        ex = _explainable(name, size, channels, cfg.seed)
        x = torch.rand(channels, size, size, generator=torch.Generator().manual_seed(cfg.seed))
        target = 0
        numel = x.numel()
        subset = None if numel <= cfg.naive_values else cfg.naive_values
        n_copies = numel * 2 * len(deltas)  # a random image in (0, 1): no step is clipped away
        label = f"{name} {channels}x{size}x{size}, {2 * len(deltas)} steps"
        log(f"--- {label}: {n_copies:,} perturbed copies ---")
        scale = 1.0 if subset is None else numel / subset
        scaled = "" if subset is None else f" ({subset} values, scaled)"
        naive, t_naive = _timed(lambda: naive_perturbation_saliency(
            ex, x, target, signed_deltas(deltas), None if subset is None else range(subset)))
        rows = [{"engine": "naive loop" + scaled, "seconds": t_naive * scale, "forward_passes": n_copies,
                 "speedup": 1.0, "max_abs_diff": 0.0}]
        check = slice(None) if subset is None else slice(0, subset)
        for engine in ("batched", "incremental"):
            # whole large copies for every pixel value take hours on 2 cores: the batched engine times a part
            part = subset if engine == "batched" else None

            def fast() -> Any:
                return perturbation_saliency(ex, x, target, deltas, max_memory_mb=cfg.max_memory, engine=engine,
                                             values=part)

            if subset is None:  # short runs: warm up, then the median of --repeats
                fast()
                timings = [_timed(fast) for _ in range(max(1, cfg.repeats))]
                r, sec = timings[0][0], statistics.median(t for _, t in timings)
            else:
                r, sec = _timed(fast)
            if part is not None:
                sec *= scale
            diff = float((r.saliency.view(-1)[check] - naive.view(-1)[check]).abs().max())
            rows.append({"engine": f"dcvkit {r.engine}" + ("" if part is None else scaled), "seconds": sec,
                         "forward_passes": n_copies if part is not None else r.forward_passes,
                         "speedup": rows[0]["seconds"] / sec, "max_abs_diff": diff})
        if has_captum:
            sec, passes = _captum(ex, x, target, subset)
            sec *= scale
            rows.append({"engine": "captum FeatureAblation" + scaled, "seconds": sec, "forward_passes": numel, "speedup": rows[0]["seconds"] / sec,
                         "max_abs_diff": None})
        for r in rows:
            log(f"{r['engine']:<45} {r['seconds']:10.2f} s  {r['speedup']:8.1f}x")
        results["cases"].append({"model": name, "size": size, "channels": channels, "deltas": deltas,
                                 "copies": n_copies, "rows": rows})
    write_json(out / "bench.json", results)
    md = "| case | engine | seconds | forward passes | speed-up vs naive | max abs diff vs naive |\n" \
         "|---|---|---|---|---|---|\n"
    for c in results["cases"]:
        for r in c["rows"]:
            diff = "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
            md += (f"| {c['model']} {c['channels']}x{c['size']}x{c['size']}, {2 * len(c['deltas'])} steps | "
                   f"{r['engine']} | {r['seconds']:.3f} | {r['forward_passes']:,} | {r['speedup']:.1f}x | {diff} |\n")
    atomic_write(out / "table.md", md.encode())
    results["out_dir"] = str(out)
    return results
