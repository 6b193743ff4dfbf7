"""The task table: everything dcvkit trains, one typed entry each (Ultralytics' ``TASKS``, with types).

An entry says what the rest of the package needs to know about a task: its config, the module with its
``train`` / ``evaluate`` / ``predict``, the registry family its models come from, the metrics its validation
reports and the default one to monitor, which config options go to the model's builder, what ``dcv export``
can make of its runs, ``dcv tune``'s default search space and the class ``dcv serve`` serves its runs with.
The CLI, ``dcv tune``, ``dcv export`` and ``dcv serve`` read the table and never list the tasks themselves.
Adding a task = one entry here + its module (and its config in :mod:`dcvkit.tasks.configs`).

This file imports no torch: ``dcv --help`` reads it at once, and a task's module is imported when used.

>>> from dcvkit.tasks import get_task
>>> spec = get_task("detect")
>>> spec.family, spec.monitor
('detect', 'auto')
>>> result = spec.train(spec.config(model="yolo", epochs=1))   # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping

from dcvkit.errors import ConfigError
from dcvkit.tasks.configs import (AutoencoderConfig, ClassifyConfig, Detect3DConfig, DetectConfig, GenerateConfig,
                                  PoseConfig, SceneGraphConfig, SegmentConfig)


@dataclass(frozen=True)
class TaskSpec:
    """One task of the table."""

    name: str                        # the command (``dcv <name> train``) and the run folder (<project>/<name>/)
    summary: str                     # its line in ``dcv --help``
    config: type                     # its options (:mod:`dcvkit.tasks.configs`)
    module: str                      # the glue: train / evaluate / predict / load_splits / load_model
    family: str                      # where ``--model`` comes from: ``dcv models --task <family>``
    metrics: tuple[str, ...]         # what validation reports per epoch (metrics.csv), by model kind
    monitor: str                     # the default ``--monitor`` ("auto": the model family's own)
    model_options: tuple[str, ...]   # config fields handed to the model's builder when set
    cli: str                         # the module under dcvkit.cli that parses ``dcv <name> ...``
    checkpoint_task: str = ""        # ``meta["task"]`` of its checkpoints (default: the name)
    exports: tuple[str, ...] = ()    # formats ``dcv export`` writes for its runs (the model family decides too)
    tune_space: Mapping[str, Any] = field(default_factory=dict)  # ``dcv tune``'s default search space
    serve: str = ""                  # the class in dcvkit.serve.runs that serves its runs (``dcv serve``)

    @property
    def meta_task(self) -> str:
        return self.checkpoint_task or self.name

    def glue(self) -> ModuleType:
        """The task's module (imported now: this is where torch comes in)."""
        return importlib.import_module(self.module)

    def train(self, cfg: Any, **kwargs: Any) -> Any:
        return self.glue().train(cfg, **kwargs)

    def evaluate(self, weights: Any, **kwargs: Any) -> dict[str, Any]:
        return self.glue().evaluate(weights, **kwargs)

    def predict(self, weights: Any, *args: Any, **kwargs: Any) -> Any:
        return self.glue().predict(weights, *args, **kwargs)

    def load_splits(self, cfg: Any) -> Any:
        """The train / val / test splits of ``cfg``'s data, as the task's ``train`` reads them."""
        return self.glue().load_splits(cfg)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("classify", "image classification: train | val | predict", ClassifyConfig, "dcvkit.tasks.classify",
             family="classify", metrics=("val_loss", "val_acc"), monitor="val_acc",
             model_options=("dropout", "width", "stem"), cli="classify", exports=("onnx",), serve="ClassifierRun",
             tune_space={"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                         "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                         "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
                         "batch_size": {"type": "categorical", "choices": [64, 128, 256]}}),
    TaskSpec("segment", "semantic segmentation: train | val | predict", SegmentConfig, "dcvkit.tasks.segment",
             family="segment", metrics=("val_loss", "val_dice", "val_iou", "val_pixel_acc"), monitor="val_dice",
             model_options=("depth", "base", "upsample", "batch_norm", "encoder", "dropout"), cli="segment",
             serve="SegmenterRun"),
    TaskSpec("autoencoder", "convolutional autoencoder: train", AutoencoderConfig, "dcvkit.tasks.segment",
             family="segment", metrics=("val_loss", "val_mse", "val_psnr"), monitor="val_loss",
             model_options=("depth", "base", "upsample", "batch_norm", "encoder", "dropout"), cli="segment",
             checkpoint_task="segment"),
    TaskSpec("detect", "object detection: train | val | predict", DetectConfig, "dcvkit.tasks.detect",
             family="detect", metrics=("val_loss", "val_acc", "val_map50", "val_map"), monitor="auto",
             model_options=("backbone", "width", "crop_size", "roi", "roi_size"), cli="detect", exports=("onnx",),
             serve="DetectorRun"),
    TaskSpec("pose", "pose estimation (keypoints, OKS AP): train | val | predict", PoseConfig, "dcvkit.tasks.pose",
             family="pose", metrics=("val_loss", "val_ap", "val_ap50"), monitor="val_ap", model_options=("width",),
             cli="pose", serve="PoseRun"),
    TaskSpec("scenegraph", "scene graphs (subject-predicate-object, Recall@K): train | val | predict",
             SceneGraphConfig, "dcvkit.tasks.scenegraph", family="scenegraph",
             metrics=("val_loss", "val_obj_acc", "val_r50", "val_mr50"), monitor="val_mr50", model_options=("width",),
             cli="scenegraph"),
    TaskSpec("detect3d", "3-D object detection from LiDAR (KITTI layout, 3-D AP): train | val | predict",
             Detect3DConfig, "dcvkit.tasks.detect3d", family="detect3d",
             metrics=("val_loss", "val_ap3d", "val_ap_bev"), monitor="val_ap3d", model_options=("width",),
             cli="detect3d"),
    TaskSpec("generate", "generative models: VAEs with KL annealing, DCGAN, latent-space tools", GenerateConfig,
             "dcvkit.tasks.generate", family="generate",
             metrics=("val_loss", "val_reconstruction", "val_kl", "val_active_units", "val_d_acc", "val_fid",
                      "val_classes_covered", "val_class_entropy"), monitor="auto",
             model_options=("latent_dim", "arch", "width", "hidden", "spectral_norm"), cli="generate",
             exports=("onnx",), serve="GeneratorRun"),
)}


def get_task(name: str) -> TaskSpec:
    """The table's entry for ``name``; an unknown name is a one-line error with suggestions."""
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown task '{name}'{hint}; the tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_of_checkpoint(meta: Mapping[str, Any] | None, where: str = "checkpoint") -> TaskSpec:
    """The entry whose runs wrote a checkpoint with this ``meta`` (the first, for tasks sharing checkpoints)."""
    task = (meta or {}).get("task") if isinstance(meta, Mapping) else None
    for spec in TASKS.values():
        if spec.meta_task == task:
            return spec
    raise ConfigError(f"{where}: {'a ' + str(task) if task else 'not a dcvkit'} checkpoint; dcvkit's tasks are "
                      f"{', '.join(TASKS)}")


__all__ = ["TaskSpec", "TASKS", "get_task", "task_of_checkpoint"]
