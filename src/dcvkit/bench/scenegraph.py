"""``dcv bench scenegraph``: the three scene-graph models, from blind to seeing, in the three protocols.

Each model (``frequency``, ``geometry``, ``visual``) is trained with ``dcv scenegraph train``'s defaults on the
same graph scenes (or loaded from a run: ``--runs visual=runs/scenegraph/visual``) and scored on the same
test scenes in PredCls, SGCls and SGDet (the objects of ``--detector``'s run; without one, a ``yolo`` is
trained first with ``dcv detect train``'s defaults on the same training scenes). The table: R@20/50/100,
mR@50, ngR@50, zsR@50, the recall of the depth predicates and of the appearance ones (what boxes cannot
tell), ms per image (one image at a time, SGDet with its detector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dcvkit.bench import run_pairs
from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.errors import ConfigError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table

#: the issue's targets, for the verdicts
TARGETS = {"predcls_r50": 0.90, "predcls_mr50": 0.70, "margin": 0.30, "sgdet_r50": 0.50}


@dataclass
class BenchSceneGraphConfig(RunConfig):
    """Benchmark: which scene-graph models, trained or loaded, and the detector of SGDet."""

    models: str = opt("frequency,geometry,visual", "comma-separated scene-graph models (dcv models --task scenegraph)")
    runs: str | None = opt(None, "load instead of training: model=RUN_DIR pairs, comma-separated")
    detector: str | None = opt(None, "the dcv detect run of SGDet (default: train yolo with dcv detect train's "
                                     "defaults on the same training scenes)")
    scenes: int = opt(3000, "training graph scenes (10% validate)")
    test_scenes: int = opt(500, "test graph scenes")
    scene_seed: int = opt(0, "seed of the scenes")
    epochs: int | None = opt(None, "epochs per model (default: each model's own)")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    progress: bool = opt(True, "show progress bars and one line per epoch")


def _detector(cfg: BenchSceneGraphConfig, splits, out_dir: Path, log: Callable[[str], None]) -> Path:
    if cfg.detector:
        return Path(cfg.detector)
    from dcvkit.data import DataSplits
    from dcvkit.tasks.configs import DetectConfig
    from dcvkit.tasks.detect import train

    log("detector: training yolo with dcv detect train's defaults on the training scenes")
    det = DataSplits(splits.name, list(splits.classes), splits.train.detection(),
                     splits.val.detection() if splits.val is not None else None, None)
    dc = DetectConfig(model="yolo", seed=cfg.seed, device=cfg.device, tensorboard=False, progress=cfg.progress)
    return train(dc, run_dir=out_dir / "detector", splits=det).run_dir


def bench_scenegraph(cfg: BenchSceneGraphConfig, out_dir: Path | None = None, log: Callable[[str], None] = print
                     ) -> dict[str, Any]:
    from dcvkit.tasks.scenegraph import SceneGraphConfig, evaluate, load_splits, train

    models = [m.strip() for m in cfg.models.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models: give at least one scene-graph model")
    loaded = run_pairs(cfg.runs)
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "scenegraph", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    base = SceneGraphConfig(scenes=cfg.scenes, test_scenes=cfg.test_scenes, scene_seed=cfg.scene_seed,
                            data_dir=cfg.data_dir, seed=cfg.seed, device=cfg.device, tensorboard=False,
                            progress=cfg.progress, epochs=cfg.epochs, test=False)
    splits = load_splits(base)
    if splits.test is None or len(splits.test) == 0:
        raise ConfigError("--test-scenes must be at least 1")
    log(splits.summary())
    detector = _detector(cfg, splits, out_dir, log)
    runs: dict[str, Path] = {}
    for m in models:
        if m in loaded:
            runs[m] = Path(loaded[m])
            continue
        log(f"{m}: training with dcv scenegraph train's defaults")
        runs[m] = train(SceneGraphConfig(**{**to_dict(base), "model": m}), run_dir=out_dir / m, splits=splits).run_dir
    rows = []
    for m in models:
        weights = runs[m] / "best.pt" if runs[m].is_dir() else runs[m]
        r = evaluate(weights, data=splits.test, device=cfg.device, out_dir=out_dir / f"{m}_test",
                     detector=str(detector))
        for protocol, p in r["protocols"].items():
            rows.append(row(m, protocol, p, str(runs[m]), r["parameters"]))
            log(f"{m} {protocol}: R@50 {p['R@50']:.4f}, mR@50 {p['mR@50']:.4f}")
    result = {"config": to_dict(cfg), "data": splits.summary(), "detector": str(detector),
              "threads": torch.get_num_threads(), "rows": rows, "out_dir": str(out_dir),
              "predicates": list(splits.train.predicates)}
    result["verdicts"] = verdicts(result)
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)) + "\n\n"
                 + markdown_table(predicate_rows(result)))
    return result


def row(model: str, protocol: str, p: dict[str, Any], run: str, params: int) -> dict[str, Any]:
    """One (model, protocol) line: the recalls, the per-predicate recall@50 and the kinds' means."""
    per = {r["predicate"]: r["R@50"] for r in p["per_predicate"]}
    kinds: dict[str, list[float]] = {}
    for r in p["per_predicate"]:
        if r["kind"] and r["R@50"] is not None:
            kinds.setdefault(r["kind"], []).append(r["R@50"])
    return {"model": model, "protocol": protocol, "run": run, "params": params,
            **{k: p[k] for k in ("R@20", "R@50", "R@100", "mR@50", "ngR@50", "zsR@50", "ms_per_image")},
            **{f"{kind}_R@50": float(np.mean(v)) for kind, v in kinds.items()}, "per_predicate": per}


def verdicts(result: dict[str, Any]) -> list[str]:
    """Each target met or missed, in measured numbers."""
    by = {(r["model"], r["protocol"]): r for r in result["rows"]}
    out = []
    v = by.get(("visual", "predcls"))
    if v:
        for key, name in (("R@50", "predcls_r50"), ("mR@50", "predcls_mr50")):
            out.append(f"visual PredCls {key} {v[key]:.3f} vs target {TARGETS[name]:.2f}: "
                       f"{'met' if v[key] >= TARGETS[name] else 'MISSED'}")
        for blind in ("frequency", "geometry"):
            b = by.get((blind, "predcls"))
            if not b:
                continue
            for pred in ("in front of", "behind", "same colour as", "matches"):
                if v["per_predicate"].get(pred) is None or b["per_predicate"].get(pred) is None:
                    continue
                gap = v["per_predicate"][pred] - b["per_predicate"][pred]
                met = "met" if gap >= TARGETS["margin"] else "MISSED"
                out.append(f"'{pred}': visual {v['per_predicate'][pred]:.3f} vs {blind} {b['per_predicate'][pred]:.3f} "
                           f"(+{gap:.3f}, target +{TARGETS['margin']:.2f}): {met}")
    s = by.get(("visual", "sgdet"))
    if s:
        out.append(f"visual SGDet R@50 {s['R@50']:.3f} vs target {TARGETS['sgdet_r50']:.2f}: "
                   f"{'met' if s['R@50'] >= TARGETS['sgdet_r50'] else 'MISSED'}")
    return out


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model": r["model"], "protocol": r["protocol"], "R@20": _f(r["R@20"]), "R@50": _f(r["R@50"]),
             "R@100": _f(r["R@100"]), "mR@50": _f(r["mR@50"]), "ngR@50": _f(r["ngR@50"]), "zsR@50": _f(r["zsR@50"]),
             "depth R@50": _f(r.get("depth_R@50")), "appearance R@50": _f(r.get("appearance_R@50")),
             "ms/image": f"{r['ms_per_image']:.2f}"} for r in result["rows"]]


def predicate_rows(result: dict[str, Any], protocol: str = "predcls") -> list[dict[str, Any]]:
    """Recall@50 of each predicate (rows) for each model (columns), in one protocol."""
    rows = [r for r in result["rows"] if r["protocol"] == protocol]
    return [{"predicate": p, **{r["model"]: _f(r["per_predicate"].get(p)) for r in rows}}
            for p in result["predicates"]]


__all__ = ["BenchSceneGraphConfig", "bench_scenegraph", "verdicts", "table_rows", "predicate_rows"]
