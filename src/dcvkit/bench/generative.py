"""``dcv bench generative``: dcvkit's VAE against a straightforward reference VAE, the same epochs.

The reference is the PyTorch examples' VAE (github.com/pytorch/examples, ``vae/main.py``), written here in
that program's style: an MLP 784-400-20 (fc1, fc21/fc22, fc3, fc4), sigmoid output, summed binary
cross-entropy + KL, Adam at 1e-3, batch 128, a bare training loop. Rows:

* ``reference``: that program;
* ``dcvkit mlp``: the same 784-400-20 design trained by ``dcv generate train --arch mlp --hidden 400
  --kl-schedule none`` (engine and data path compared like for like);
* ``dcvkit vae``: ``dcv generate train``'s defaults (convolutional, linear KL annealing).

All three see the same training split and are scored by the same function on the same test images:
negative ELBO (nats per image, weight 1) and an importance-sampled NLL estimate. Training images per second
are timed afterwards, side by side in one process: ``--rounds`` interleaved rounds of ``--steps`` steps per
model (fresh copies of the trained models, the same images, a warm-up round first), medians; ratios against
the reference.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.engine import resolve_device, seed_everything
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table


@dataclass
class BenchGenerativeConfig(RunConfig):
    """Benchmark: epochs, data, and how many test images the NLL estimate uses."""

    epochs: int = opt(10, "epochs for every model (the PyTorch example's default)")
    batch_size: int = opt(128, "images per step (the example's)")
    data: str = opt("fashion-mnist", "fashion-mnist or mnist")
    data_dir: str | None = opt(None, "folder holding the dataset's files")
    limit: int | None = opt(None, "training images (before the validation split); empty for all")
    models: str = opt("reference,dcvkit mlp,dcvkit vae", "rows to run")
    nll_images: int = opt(1000, "test images for the NLL estimate")
    nll_samples: int = opt(64, "importance samples per image")
    rounds: int = opt(5, "timing: interleaved rounds per model (after a warm-up round); medians are reported")
    steps: int = opt(100, "timing: training steps per round")
    device: str = opt("auto", "auto, cpu or cuda", ("auto", "cpu", "cuda"))
    progress: bool = opt(True, "show progress bars and one line per epoch")


class ReferenceVAE(nn.Module):
    """The PyTorch examples' VAE: 784 -> 400 -> (mu, logvar) 20; 20 -> 400 -> 784, sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)
        self.num_classes, self.latent_dim, self.img_size = 0, 20, 28

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, 1, 28, 28); the example applies the sigmoid in ``forward``."""
        return self.fc4(F.relu(self.fc3(z))).view(-1, 1, 28, 28)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        return torch.sigmoid(self.decode(self.reparameterize(mu, logvar))), mu, logvar


def reference_loss(recon_x: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """The example's loss_function: summed BCE + KL over the batch."""
    bce = F.binary_cross_entropy(recon_x.view(-1, 784), x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def reference_epoch(model: ReferenceVAE, optimizer: torch.optim.Optimizer, data: Tensor, batch_size: int,
                    order: Tensor | None = None) -> tuple[float, float]:
    """One pass of the example's loop body over float ``data`` (in ``order`` when given); returns (summed
    loss, seconds)."""
    model.train()
    train_loss = 0.0
    t0 = time.perf_counter()
    for i in range(0, len(data), batch_size):
        x = data[order[i:i + batch_size]] if order is not None else data[i:i + batch_size]
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss = reference_loss(recon, x, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss, time.perf_counter() - t0


def train_reference(images: Tensor, epochs: int, batch_size: int, seed: int, device: torch.device,
                    log: Callable[[str], None]) -> tuple[ReferenceVAE, list[float], float]:
    """The example's training (shuffled batches, Adam 1e-3); returns the model, images/s per epoch and the
    total training seconds."""
    torch.manual_seed(seed)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = images.float().div(255).to(device)  # the example's data are floats before training starts
    speeds, total = [], 0.0
    for epoch in range(1, epochs + 1):
        train_loss, dt = reference_epoch(model, optimizer, data, batch_size, torch.randperm(len(data)))
        total += dt
        speeds.append(len(data) / dt)
        log(f"reference epoch {epoch}/{epochs}: average loss {train_loss / len(data):.2f}, {dt:.1f}s")
    return model, speeds, total


def time_reference(model: ReferenceVAE, images: Tensor, batch_size: int, device: torch.device) -> float:
    """Training images/s of the reference's loop on ``images`` (uint8), one pass; the float copy is made before
    the clock starts, as in its training."""
    data = images.float().div(255).to(device)
    _, seconds = reference_epoch(model, torch.optim.Adam(model.parameters(), lr=1e-3), data, batch_size)
    return len(data) / seconds


def time_dcvkit(model: nn.Module, data: Any, cfg: Any, classes: list[str], kw: dict[str, Any]) -> float:
    """Training images/s of dcvkit's engine (``Trainer`` + ``VAETask``) over ``data`` for one epoch: the
    engine's own count, the training loop without the epoch-end checkpoint write."""
    import tempfile

    from dcvkit.engine import Trainer
    from dcvkit.tasks.generate import VAETask

    task = VAETask(model, cfg, classes, kw, math.ceil(len(data) / cfg.batch_size))
    with tempfile.TemporaryDirectory() as tmp:
        fit = Trainer(task, cfg, Path(tmp)).fit(data.loader(cfg.batch_size, shuffle=True, seed=cfg.seed))
    return float(fit.history[0]["images_per_s"])


@torch.no_grad()
def score(model: Any, images: Tensor, device: torch.device, nll_images: int, nll_samples: int) -> dict[str, float]:
    """The same scoring for every row: :func:`dcvkit.tasks.generate.elbo_and_nll` (BCE) from a fixed seed."""
    from dcvkit.tasks.generate import elbo_and_nll

    model.eval()
    torch.manual_seed(0)
    r = elbo_and_nll(model, images, None, "bce", nll_images, nll_samples, device)
    return {k: r[k] for k in ("neg_elbo", "reconstruction", "kl", "nll")}


def bench_generative(cfg: BenchGenerativeConfig, out_dir: Path | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    from dcvkit.data import load_dataset
    from dcvkit.errors import ConfigError
    from dcvkit.tasks.generate import GenerateConfig, load_generator, resolve_defaults, train

    names = [m.strip() for m in cfg.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in ("reference", "dcvkit mlp", "dcvkit vae")]
    if unknown or not names:
        raise ConfigError(f"--models: unknown rows {unknown}; choose from reference, dcvkit mlp, dcvkit vae")
    device = resolve_device(cfg.device)
    splits = load_dataset(cfg.data, data_dir=cfg.data_dir, seed=cfg.seed, limit=cfg.limit)
    if tuple(splits.train.images.shape[1:]) != (1, 28, 28):
        raise ConfigError(f"{cfg.data}: the reference VAE is 784-400-20: it needs 1x28x28 images")
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "generative", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    test = splits.test.images
    rows: list[dict[str, Any]] = []
    trained: dict[str, tuple[nn.Module, Any, Any]] = {}
    for name in names:
        log(f"--- {name} ---")
        seed_everything(cfg.seed)
        if name == "reference":
            model, speeds, seconds = train_reference(splits.train.images, cfg.epochs, cfg.batch_size, cfg.seed,
                                                     device, log)
            params = sum(p.numel() for p in model.parameters())
            design = "MLP 784-400-20, bare loop (pytorch/examples)"
            trained[name] = (model, None, None)
        else:
            opts: dict[str, Any] = dict(arch="mlp", hidden=400, kl_schedule="none") if name == "dcvkit mlp" else {}
            gcfg = resolve_defaults(GenerateConfig(
                model="vae", data=cfg.data, data_dir=cfg.data_dir, limit=cfg.limit, epochs=cfg.epochs,
                batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device, progress=cfg.progress, tensorboard=False,
                fid_classifier="none", test=False, samples_every=0, **opts))
            r = train(gcfg, run_dir=out_dir / name.replace(" ", "_"), splits=splits)
            model, meta = load_generator(r.run_dir / "last.pt", str(device))
            timing_cfg = dataclasses.replace(gcfg, epochs=1, progress=False)
            trained[name] = (model, timing_cfg, meta["model_kwargs"])
            speeds = [h["images_per_s"] for h in r.fit.history]
            seconds = sum(h["time_s"] for h in r.fit.history)
            params = sum(p.numel() for p in model.parameters())
            design = ("MLP 784-400-20 through dcvkit's engine, no annealing" if name == "dcvkit mlp"
                      else "conv VAE, linear KL annealing (dcv generate train defaults)")
        s = score(model, test, device, cfg.nll_images, cfg.nll_samples)
        rows.append({"model": name, "design": design, "params": params, "epochs": cfg.epochs,
                     "neg_elbo": round(s["neg_elbo"], 2), "reconstruction": round(s["reconstruction"], 2),
                     "kl": round(s["kl"], 2), "nll": round(s["nll"], 2),
                     "train_seconds": round(seconds, 1), "epoch_images_per_s": round(statistics.median(speeds), 1)})
        log(f"{name}: test -ELBO {s['neg_elbo']:.2f}, NLL ~{s['nll']:.2f}")
    # Throughput apart from training, in interleaved rounds (one warm-up round first), so that a model is
    # never timed only while the machine is slow: fresh copies of each trained model, the same images.
    import copy

    timing = splits.train.subset(torch.arange(min(len(splits.train), cfg.steps * cfg.batch_size)))
    timed: dict[str, list[float]] = {r["model"]: [] for r in rows}
    for rnd in range(cfg.rounds + 1):
        for name, (m, gcfg, kw) in trained.items():
            torch.manual_seed(cfg.seed)
            m2 = copy.deepcopy(m)
            ips = (time_reference(m2, timing.images, cfg.batch_size, device) if name == "reference"
                   else time_dcvkit(m2, timing, gcfg, list(splits.classes), kw))
            if rnd:
                timed[name].append(ips)
        if rnd:
            log(f"timing round {rnd}/{cfg.rounds}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in timed.items()))
    for r in rows:
        r["images_per_s"] = round(statistics.median(timed[r["model"]]), 1)
        r["images_per_s_rounds"] = [round(v, 1) for v in timed[r["model"]]]
    ref = next((r for r in rows if r["model"] == "reference"), None)
    verdicts = []
    for r in rows:
        if ref is not None and r is not ref:
            r["elbo_gain_vs_reference"] = round(ref["neg_elbo"] - r["neg_elbo"], 2)
            r["speed_vs_reference"] = round(r["images_per_s"] / ref["images_per_s"], 2)
            verdicts.append(f"{r['model']}: test -ELBO {r['neg_elbo']:.2f} vs the reference's {ref['neg_elbo']:.2f} "
                            f"({'better' if r['neg_elbo'] < ref['neg_elbo'] else 'worse'} by "
                            f"{abs(r['elbo_gain_vs_reference']):.2f} nats); {r['speed_vs_reference']:.2f}x its "
                            "training images/s")
    results = {"data": splits.summary(), "device": str(device), "threads": torch.get_num_threads(),
               "test_images": len(test), "nll_images": min(cfg.nll_images, len(test)), "rows": rows,
               "verdicts": verdicts, "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", results)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(results)) + "\n" + "\n".join(verdicts) + "\n")
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"model": r["model"], "design": r["design"], "params": f"{r['params']:,}", "epochs": r["epochs"],
             "test -ELBO": f"{r['neg_elbo']:.2f}", "rec": f"{r['reconstruction']:.2f}", "KL": f"{r['kl']:.2f}",
             "NLL~": f"{r['nll']:.2f}", "train img/s": f"{r['images_per_s']:,.0f}",
             "vs ref": f"{r['speed_vs_reference']:.2f}x" if "speed_vs_reference" in r else "1.00x"}
            for r in results["rows"]]
