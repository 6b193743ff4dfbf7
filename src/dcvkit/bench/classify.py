"""``dcv bench classify``: training throughput of dcvkit's engine against two references, same model.

Contenders, each training the same architecture from the same initial weights with the same optimizer,
batch size and number of steps, interleaved over several rounds (median images/s is reported):

* ``dcvkit``: :class:`~dcvkit.engine.Trainer` with :class:`~dcvkit.tasks.classify.ClassificationTask` on the
  in-memory dataset (progress bar, TensorBoard and checkpoints as in a real run, only the bar off).
* ``bare``: the tightest loop one would write by hand: index the uint8 tensor, normalise, forward, backward,
  step; channels-last like dcvkit, so the ratio measures the engine's overhead alone.
* ``bare (NCHW)``: the same loop in PyTorch's default memory format, to show what channels-last buys.
* ``torchvision``: the usual pipeline: a ``Dataset`` returning PIL images (as ``torchvision.datasets.FashionMNIST``
  does) through ``transforms.ToTensor`` + ``Normalize`` and a ``DataLoader`` with workers.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.data import load_dataset
from dcvkit.data.core import ImageTensors
from dcvkit.io import new_run_dir, write_json, write_yaml
from dcvkit.models import create_model


@dataclass
class BenchClassifyConfig(RunConfig):
    """Benchmark: models, batch, steps, rounds."""

    data: str = opt("fashion-mnist", "named dataset")
    data_dir: str | None = opt(None, "folder holding the dataset's files")
    models: str = opt("cnn,mlp", "comma-separated registry models to benchmark")
    batch_size: int = opt(128, "images per step")
    steps: int = opt(200, "timed training steps per contender per round (a Fashion-MNIST epoch is 422)")
    warmup: int = opt(5, "untimed steps before each timing")
    rounds: int = opt(3, "rounds; contenders are interleaved and the median is reported")
    workers: int = opt(2, "DataLoader workers of the torchvision pipeline")
    lr: float = opt(0.01, "SGD learning rate (all contenders)")


class PILDataset(Dataset):
    """What ``torchvision.datasets.FashionMNIST.__getitem__`` does: uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.images, self.labels, self.transform = images.squeeze(1).numpy(), labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def _sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _time_bare(model: nn.Module, data: ImageTensors, cfg: BenchClassifyConfig, mean: float, std: float,
               channels_last: bool) -> float:
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt_ = _sgd(model, cfg.lr)
    n, b = len(data), cfg.batch_size
    perm = torch.randperm(n)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def step(i: int) -> None:
        idx = perm[(i * b) % (n - b):(i * b) % (n - b) + b]
        x = ((data.images[idx].float() - mean * 255) / (std * 255)).contiguous(memory_format=fmt)
        loss = F.cross_entropy(model(x), data.labels[idx])
        opt_.zero_grad(set_to_none=True)
        loss.backward()
        opt_.step()

    for i in range(cfg.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(cfg.steps):
        step(cfg.warmup + i)
    return cfg.steps * b / (time.perf_counter() - t0)


def _time_torchvision(model: nn.Module, data: ImageTensors, cfg: BenchClassifyConfig, mean: float,
                      std: float) -> float:
    from torchvision import transforms

    model.train()
    opt_ = _sgd(model, cfg.lr)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    n_img = (cfg.warmup + cfg.steps) * cfg.batch_size
    loader = DataLoader(PILDataset(data.images[:n_img], data.labels[:n_img], tf), batch_size=cfg.batch_size,
                        shuffle=True, num_workers=cfg.workers, drop_last=True)
    t0 = None
    for i, (x, y) in enumerate(loader):  # worker start-up counts: it is part of the pipeline's cost
        if i == cfg.warmup:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt_.zero_grad(set_to_none=True)
        loss.backward()
        opt_.step()
    assert t0 is not None
    return cfg.steps * cfg.batch_size / (time.perf_counter() - t0)


def _time_dcvkit(model: nn.Module, data: ImageTensors, cfg: BenchClassifyConfig, mean: float, std: float) -> float:
    from dcvkit.engine import Trainer
    from dcvkit.models.normalise import Normaliser
    from dcvkit.tasks.classify import ClassificationTask, ClassifyConfig

    n_img = (cfg.warmup + cfg.steps) * cfg.batch_size
    tcfg = ClassifyConfig(epochs=1, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="sgd", nesterov=False,
                          weight_decay=0.0, scheduler="none", progress=False, tensorboard=False, device="cpu")
    task = ClassificationTask(model, tcfg, data.classes, Normaliser([mean], [std]), model_kwargs={})
    with tempfile.TemporaryDirectory() as tmp:
        warm = Trainer(task, tcfg, Path(tmp) / "w")
        warm.fit(data.subset(torch.arange(cfg.warmup * cfg.batch_size)).loader(cfg.batch_size, shuffle=True))
        trainer = Trainer(task, tcfg, Path(tmp) / "t")
        loader = data.subset(torch.arange(cfg.warmup * cfg.batch_size, n_img)).loader(cfg.batch_size, shuffle=True)
        t0 = time.perf_counter()
        trainer.fit(loader)
        return cfg.steps * cfg.batch_size / (time.perf_counter() - t0)


def bench_classify(cfg: BenchClassifyConfig, out_dir: Path | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark; returns (and writes as ``bench.json``) images/s and ratios per model."""
    torch.manual_seed(cfg.seed)
    splits = load_dataset(cfg.data, data_dir=cfg.data_dir, val_split=0.0, seed=cfg.seed)
    data = splits.train
    mean_l, std_l = data.mean_std()
    mean, std = mean_l[0], std_l[0]
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "classify", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    results: dict[str, Any] = {"config": to_dict(cfg), "threads": torch.get_num_threads(), "models": {}}
    for name in [m for m in cfg.models.split(",") if m]:
        init = create_model(name, num_classes=splits.num_classes, in_chans=data.channels, img_size=data.img_size)
        contenders: dict[str, Callable[[nn.Module], float]] = {
            "dcvkit": lambda m: _time_dcvkit(m, data, cfg, mean, std),
            "bare": lambda m: _time_bare(m, data, cfg, mean, std, channels_last=True),
            "bare (NCHW)": lambda m: _time_bare(m, data, cfg, mean, std, channels_last=False),
            "torchvision": lambda m: _time_torchvision(m, data, cfg, mean, std),
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(cfg.rounds):
            for key, fn in contenders.items():
                ips = fn(copy.deepcopy(init))
                times[key].append(ips)
                log(f"{name} round {r + 1}/{cfg.rounds}: {key:12s} {ips:9.0f} images/s")
        med = {k: statistics.median(v) for k, v in times.items()}
        results["models"][name] = {
            "images_per_s": med, "all_rounds": times,
            "dcvkit_vs_bare": med["dcvkit"] / med["bare"],
            "dcvkit_vs_torchvision": med["dcvkit"] / med["torchvision"],
            "dcvkit_vs_bare_nchw": med["dcvkit"] / med["bare (NCHW)"],
        }
    write_json(out_dir / "bench.json", results)
    results["out_dir"] = str(out_dir)
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, r in results["models"].items():
        ips = r["images_per_s"]
        rows.append({"model": name, "dcvkit img/s": round(ips["dcvkit"]), "bare img/s": round(ips["bare"]),
                     "bare NCHW img/s": round(ips["bare (NCHW)"]), "torchvision img/s": round(ips["torchvision"]),
                     "dcvkit/bare": round(r["dcvkit_vs_bare"], 3),
                     "dcvkit/torchvision": round(r["dcvkit_vs_torchvision"], 2)})
    return rows
