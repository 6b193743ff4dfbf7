"""Benchmark peers run apart from dcvkit: Ultralytics YOLOv8n, trained from scratch (``yolov8n.yaml``, no
weights) in its own virtual environment and process, scored by dcvkit's evaluator on the same test images.

Ultralytics is AGPL-3.0: it is never imported by dcvkit nor installed with it. ``dcv bench detect --peer
ultralytics --install-peer`` creates the environment (``pip install ultralytics`` from PyPI: the one network
access, when asked), then each run only starts ``<env>/bin/python`` on the small scripts below and reads
back JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from dcvkit.errors import ConfigError, DataError

DEFAULT_ENV = Path(os.environ.get("DCV_CACHE", Path.home() / ".cache" / "dcvkit")) / "peers" / "ultralytics"

_TRAIN = """
import json, sys, time
from ultralytics import YOLO
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
m = YOLO("yolov8n.yaml")
m.train(data=a["data"], epochs=a["epochs"], time=a["hours"], imgsz=a["imgsz"], batch=a["batch"], device="cpu",
        pretrained=False, seed=a["seed"], deterministic=False, workers=a["workers"], project=a["project"],
        name="train", exist_ok=True, plots=False, amp=False, verbose=False)
print(json.dumps({"best": str(m.trainer.best), "seconds": time.perf_counter() - t0,
                  "epochs": int(m.trainer.epoch) + 1}))
"""

_PREDICT = """
import json, sys, time
from ultralytics import YOLO
a = json.loads(sys.argv[1])
m = YOLO(a["weights"])
out, seconds = [], []
for path in a["images"]:
    t0 = time.perf_counter()
    r = m.predict(path, imgsz=a["imgsz"], conf=0.001, iou=0.7, max_det=300, device="cpu", verbose=False)[0]
    seconds.append(time.perf_counter() - t0)
    b = r.boxes
    out.append({"boxes": b.xyxy.tolist(), "scores": b.conf.tolist(), "labels": [int(c) for c in b.cls.tolist()]})
print(json.dumps({"detections": out, "predict_seconds": seconds}))
"""


def ensure_env(env: Path, install: bool, log: Callable[[str], None] = print) -> Path:
    """The peer environment's Python; created (venv + ``pip install ultralytics``, torch pinned to dcvkit's
    range) when ``install``, else a one-line error saying how."""
    python = env / "bin" / "python"
    if python.is_file() and _has_ultralytics(python):
        return python
    if not install:
        raise ConfigError(f"--peer ultralytics: no Ultralytics environment at {env}; add --install-peer to create it "
                          "(pip install ultralytics from PyPI into its own venv: AGPL-3.0, run apart, never imported)")
    log(f"installing Ultralytics into {env} (its own venv; a few minutes)")
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "torch<2.15", "torchvision<0.30", "ultralytics"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not _has_ultralytics(python):
        tail = " ".join((r.stderr or r.stdout).split()[-30:])
        raise DataError(f"--install-peer: pip could not install ultralytics into {env}: {tail}")
    return python


def _has_ultralytics(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import ultralytics"], capture_output=True).returncode == 0


def _run(python: Path, script: str, args: dict[str, Any], log_path: Path) -> dict[str, Any]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    r = subprocess.run([str(python), "-c", script, json.dumps(args)], capture_output=True, text=True, env=env)
    log_path.write_text(r.stdout + "\n" + r.stderr)
    if r.returncode != 0:
        raise DataError(f"the Ultralytics peer failed (exit {r.returncode}); its output is in {log_path}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def peer_data_yaml(out_dir: Path, train_files: Sequence[Path], val_files: Sequence[Path], classes: list[str]) -> Path:
    """An Ultralytics data YAML naming exactly the images dcvkit trains and validates on (image lists; labels
    are read from the YOLO layout's labels/ folder beside images/)."""
    from dcvkit.io import atomic_write, write_yaml

    for name, files in (("train", train_files), ("val", val_files)):
        atomic_write(out_dir / f"{name}.txt", "".join(f"{Path(f).resolve()}\n" for f in files))
    path = out_dir / "peer_data.yaml"
    write_yaml(path, {"path": str(out_dir.resolve()), "train": "train.txt", "val": "val.txt",
                      "names": dict(enumerate(classes))})
    return path


def ultralytics_yolov8n(python: Path, data_yaml: Path, test_files: Sequence[Path], minutes: float, imgsz: int,
                        batch: int, seed: int, workers: int, out_dir: Path, trained_dir: Path | None = None
                        ) -> dict[str, Any]:
    """Train YOLOv8n from scratch for ``minutes`` of wall-clock time (or take the run an earlier bench trained
    in ``trained_dir``: its ``train.log`` and weights), then detect the test images: its detections
    (original pixels), ``predict_seconds`` per image, epochs run and training ``seconds``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if trained_dir is not None:
        log = Path(trained_dir) / "train.log"
        if not log.is_file():
            raise DataError(f"{log}: no Ultralytics training log; give --runs ultralytics=DIR, an earlier "
                            "bench's ultralytics/ folder")
        trained = json.loads([ln for ln in log.read_text().splitlines() if ln.startswith("{")][-1])
    else:
        trained = _run(python, _TRAIN, {"data": str(data_yaml), "epochs": 10_000, "hours": minutes / 60,
                                        "imgsz": imgsz, "batch": batch, "seed": seed, "workers": workers,
                                        "project": str(out_dir)}, out_dir / "train.log")
    pred = _run(python, _PREDICT, {"weights": trained["best"], "images": [str(p) for p in test_files], "imgsz": imgsz},
                out_dir / "predict.log")
    return {**trained, **pred}


__all__ = ["ensure_env", "peer_data_yaml", "ultralytics_yolov8n", "DEFAULT_ENV"]
