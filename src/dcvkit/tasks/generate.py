"""Generative models: VAEs with KL annealing (``vae``, ``cvae``) and GANs (``dcgan``).

Python API (the CLI calls exactly these)::

    from dcvkit.tasks.generate import GenerateConfig, train, evaluate
    result = train(GenerateConfig(model="vae"))             # Fashion-MNIST, KL annealed linearly
    evaluate(result.run_dir)                                 # -ELBO, NLL estimate, FID-FMNIST, class coverage
    train(GenerateConfig(model="dcgan", gan_loss="minimax"))

Batches are ``(uint8 images (B, C, H, W), labels (B,))``; images become floats in [0, 1] (VAE) or [-1, 1]
(GAN) on the device, resized to ``--img-size`` when it differs (e.g. 64 for the 64x64 DCGAN).

Which of the two trains a model is its family's ``trainer`` (:class:`~dcvkit.models.generate.Generative`),
and its defaults (epochs, lr, monitor) are the family's too: nothing here branches on a model's name, so a
generator registered from outside the package trains, evaluates and exports as it is.

The GAN steps its two players itself (``manual_optimization``) with **one** Adam holding two parameter
groups, the generator's first: Adam skips parameters without a gradient, so D's step (on detached fakes)
never moves G, and G's step drops D's gradients before stepping. That is exactly two Adams (per-parameter
state), while the engine's checkpoint, resume and learning-rate schedule stay those of every other task.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dcvkit.config import TrainConfig, from_dict
from dcvkit.data import DataSplits
from dcvkit.engine import seed_everything
from dcvkit.engine.callbacks import Callback, TensorBoard
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import load_checkpoint, write_csv, write_json
from dcvkit.losses.generative import discriminator_loss, generator_loss, kl_weight, negative_elbo
from dcvkit.metrics.fid import Judge, inception_fid
from dcvkit.metrics.generative import active_units, importance_sampled_nll
from dcvkit.models import create_model
from dcvkit.models.generate import Generative
from dcvkit.models.generate.base import to_uint8, to_unit
from dcvkit.models.trained import load_run_model
from dcvkit.tasks import get_task
from dcvkit.tasks.common import TrainResult, family_class, fit_run, model_kwargs, start_config
from dcvkit.tasks.configs import GenerateConfig

def generator_class(cfg: GenerateConfig) -> type[Generative]:
    """The class of ``cfg.model``'s models: its trainer (VAE or GAN) and training defaults."""
    return family_class(get_task("generate"), cfg.model)


def resolve_defaults(cfg: GenerateConfig) -> GenerateConfig:
    """Fill the options the config leaves to the model's family (epochs, lr, monitor) and check the rest
    before any data is loaded."""
    family = generator_class(cfg)
    model_kwargs(get_task("generate"), cfg)  # model options the model does not take: one line naming its own
    gan = family.trainer == "gan"
    changes: dict[str, Any] = {}
    for name in ("epochs", "lr"):
        if getattr(cfg, name) is None:
            changes[name] = family.defaults[name]
    if cfg.monitor == "auto":
        monitor = family.defaults["monitor"]
        changes["monitor"] = "val_loss" if monitor == "val_fid" and cfg.fid_classifier == "none" else monitor
    if cfg.d_steps < 1:
        raise ConfigError(f"--d-steps must be >= 1, got {cfg.d_steps}")
    if not gan:  # check the schedule's options now, not at the first step after loading data
        kl_weight(0, 1, cfg.kl_schedule, cfg.beta, cfg.kl_ratio, cfg.kl_cycles)
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}")
    return dataclasses.replace(cfg, **changes)


def task_class(model: Generative | type[Generative]) -> type["GenerativeTask"]:
    """The task that trains the model's family: :attr:`Generative.trainer` ``vae`` or ``gan``."""
    return {"vae": VAETask, "gan": GANTask}[model.trainer]


# --- data ------------------------------------------------------------------------------------------


def load_splits(cfg: GenerateConfig) -> DataSplits:
    from dcvkit.data import named

    if named.canonical_name(cfg.data):  # fixed-size named data: --img-size is the size to generate at
        cfg = dataclasses.replace(cfg, img_size=None)
    splits = cfg.load_splits(cfg.seed)
    if not hasattr(splits.train, "images"):
        raise DataError(f"{cfg.data}: too large to hold in memory for a generative model; use --limit or a smaller "
                        "--img-size")
    if splits.train.images.ndim != 4:
        raise DataError(f"{cfg.data}: generative models take images, not clips")
    return splits


# --- FID-FMNIST: which classifier judges the run ---------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def judge_for(cfg: GenerateConfig, splits: DataSplits | None = None, log: Callable[[str], None] | None = None
              ) -> Judge | None:
    """The classifier for FID and coverage: ``--fid-classifier RUN``; ``auto``: a cnn trained once on the
    training data (>= 2 classes) and kept in ``<project>/generate/fid-classifier-<data>`` (written to a
    temporary folder and renamed, so concurrent runs never see half a classifier); ``none``: no judge."""
    if cfg.fid_classifier == "none":
        return None
    if cfg.fid_classifier != "auto":
        return Judge(cfg.fid_classifier, cfg.device if cfg.device != "auto" else "cpu")
    if splits is not None and splits.num_classes < 2:
        return None
    from dcvkit.data import named

    slug = named.canonical_name(cfg.data) or "".join(c if c.isalnum() else "-" for c in Path(cfg.data).name)
    final = Path(cfg.project) / "generate" / f"fid-classifier-{slug}"
    if not (final / "best.pt").is_file():
        from dcvkit.tasks.classify import ClassifyConfig, train as train_classifier

        if log:
            log(f"training the FID classifier (cnn, 5 epochs) once into {final}")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fid-classifier-", dir=final.parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the renamed run should look like any other
        try:
            train_classifier(ClassifyConfig(
                data=cfg.data, data_dir=cfg.data_dir, channels=cfg.channels, model="cnn",
                img_size=None if named.canonical_name(cfg.data) else cfg.img_size,
                epochs=5, seed=0, device=cfg.device, progress=cfg.progress, tensorboard=False, test=True),
                run_dir=tmp)
            try:
                os.rename(tmp, final)
            except OSError:  # another run got there first: use theirs
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists() and tmp != final:
                shutil.rmtree(tmp, ignore_errors=True)
    return Judge(final, cfg.device if cfg.device != "auto" else "cpu")


# --- the tasks ------------------------------------------------------------------------------------------


class GenerativeTask:
    """What both families share: the model's image range, fixed noise, per-step logs, checkpoint meta."""

    model: Generative

    def __init__(self, model: Generative, cfg: GenerateConfig, classes: list[str], model_kwargs: dict[str, Any],
                 steps_per_epoch: int, judge: Judge | None = None, val_stats: tuple[Tensor, Tensor] | None = None):
        self.model, self.cfg, self.classes = model, cfg, classes
        self.model_kwargs = model_kwargs
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = self.steps_per_epoch * int(cfg.epochs or 1)
        self.judge, self.val_stats = judge, val_stats
        self.step = 0
        self.step_log: list[dict[str, float]] = []  # per-step values (KL weight, gradient norms): steps.csv
        self._val: list[tuple[Any, ...]] = []  # per-batch validation sums, reduced in validation_epoch_end
        self._last_g: tuple[Tensor, Tensor] | None = None  # GAN: the last G step's loss and gradient norm

    @property
    def size(self) -> int:
        return self.model.img_size

    def on_train_epoch_start(self, epoch: int) -> None:
        self.step = epoch * self.steps_per_epoch  # a resumed run continues the schedule where it was

    def fixed_noise(self, n: int = 64) -> tuple[Tensor, Tensor | None]:
        """The same latent codes (and classes: 8 per class for a conditional model) every epoch."""
        g = torch.Generator().manual_seed(self.cfg.seed + 12345)
        z = torch.randn(n, self.model.latent_dim, generator=g)
        y = torch.arange(n) % self.model.num_classes if self.model.num_classes else None
        return z, y

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch: int = 500) -> tuple[Tensor, Tensor | None]:
        """n uint8 samples (n, C, H, W) from the prior (classes spread evenly when conditional) and their
        classes."""
        g = torch.Generator().manual_seed(seed)
        dev = next(self.model.parameters()).device
        out = []
        y_all = torch.arange(n) % self.model.num_classes if self.model.num_classes else None
        for i in range(0, n, batch):
            k = min(batch, n - i)
            z = torch.randn(k, self.model.latent_dim, generator=g).to(dev)
            y = y_all[i:i + k].to(dev) if y_all is not None else None
            out.append(to_uint8(self.model.generate(z, y)))
        return torch.cat(out), y_all

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"task": "generate", "model": self.cfg.model, "model_kwargs": self.model_kwargs,
                "classes": self.classes, "reconstruction": self.cfg.reconstruction,
                "fid_classifier": self.judge.path if self.judge is not None else None}


class VAETask(GenerativeTask):
    """-ELBO with the KL weight annealed per step; validation reports the true bound (weight 1)."""

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        from dcvkit.engine import build_optimizer, param_groups

        return build_optimizer(param_groups(self.model, cfg.weight_decay), cfg)

    def _y(self, labels: Tensor) -> Tensor | None:
        return labels if self.model.num_classes else None

    def kl_weight(self) -> float:
        c = self.cfg
        return kl_weight(self.step, self.total_steps, c.kl_schedule, c.beta, c.kl_ratio, c.kl_cycles)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        images, labels = batch
        x = to_unit(images, self.size)
        logits, mu, logvar = self.model(x, self._y(labels))
        w = self.kl_weight()
        out = negative_elbo(logits, x, mu, logvar, self.cfg.reconstruction, w)
        self.step_log.append({"step": self.step + 1, "kl_weight": w, "kl": float(out["kl"]),
                              "reconstruction": float(out["reconstruction"])})
        self.step += 1
        return out["loss"], {"reconstruction": out["reconstruction"], "kl": out["kl"],
                             "kl_weight": torch.tensor(w)}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> None:
        images, labels = batch
        x = to_unit(images, self.size)
        logits, mu, logvar = self.model(x, self._y(labels))
        out = negative_elbo(logits, x, mu, logvar, self.cfg.reconstruction, 1.0)
        self._val.append((len(x), float(out["reconstruction"]), float(out["kl"]), mu.float().cpu()))

    def validation_epoch_end(self) -> dict[str, float]:
        n = sum(v[0] for v in self._val)
        rec = sum(v[0] * v[1] for v in self._val) / n
        kl = sum(v[0] * v[2] for v in self._val) / n
        mu = torch.cat([v[3] for v in self._val])
        self._val = []
        return {"val_loss": rec + kl, "val_reconstruction": rec, "val_kl": kl, "val_active_units": active_units(mu)}


def grad_norm(params: list[nn.Parameter]) -> Tensor:
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())


class GANTask(GenerativeTask):
    """Alternating steps: D on real and detached fake images, then (every ``d_steps`` batches) G through D.
    Logs D's loss and accuracy, G's loss, both gradient norms; validation reports FID against the
    validation split and the class coverage of samples (mode collapse shows there first)."""

    manual_optimization = True

    def configure_optimizers(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        c = self.cfg
        self.g_params = list(self.model.generator.parameters())
        self.d_params = list(self.model.discriminator.parameters())
        groups = [{"params": self.g_params, "lr": c.lr, "name": "generator"},
                  {"params": self.d_params, "lr": c.d_lr or c.lr, "name": "discriminator"}]
        self.optimizer = torch.optim.Adam(groups, lr=c.lr, betas=(c.beta1, 0.999), weight_decay=c.weight_decay)
        return self.optimizer

    def training_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        images, _ = batch
        real = to_unit(images, self.size) * 2 - 1
        G, D, opt = self.model.generator, self.model.discriminator, self.optimizer
        fake = G(torch.randn(len(real), self.model.latent_dim, device=real.device))
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, self.cfg.gan_loss, self.cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        d_loss.backward()  # fake is detached: G gets no gradient, so Adam leaves it alone
        d_grad = grad_norm(self.d_params)
        opt.step()
        d_acc = ((real_logits.detach() > 0).float().mean() + (fake_logits.detach() < 0).float().mean()) / 2
        d_fake = fake_logits.detach().float().sigmoid().mean()  # D(G(z)): near 0 when D rejects the fakes
        self.step += 1
        if self.step % self.cfg.d_steps == 0:  # a function of the step alone, so a resumed run steps G alike
            g_loss = generator_loss(D(fake), self.cfg.gan_loss)
            opt.zero_grad(set_to_none=True)
            g_loss.backward()
            for p in self.d_params:  # G's step moves G only
                p.grad = None
            g_grad = grad_norm(self.g_params)
            opt.step()
            self._last_g = (g_loss.detach(), g_grad)
        # between G steps the last G step's values are logged (zeros before the first one)
        g_loss_d, g_grad = self._last_g if self._last_g is not None else (torch.zeros((), device=real.device),) * 2
        self.step_log.append({"step": self.step, "d_loss": float(d_loss.detach()), "g_loss": float(g_loss_d),
                              "d_acc": float(d_acc), "d_fake": float(d_fake), "g_grad_norm": float(g_grad),
                              "d_grad_norm": float(d_grad)})
        return g_loss_d, {"d_loss": d_loss.detach(), "d_acc": d_acc, "d_fake": d_fake, "g_grad_norm": g_grad,
                          "d_grad_norm": d_grad}

    def validation_step(self, batch: tuple[Tensor, Tensor]) -> None:
        images, _ = batch
        real = to_unit(images, self.size) * 2 - 1
        fake = self.model.generator(torch.randn(len(real), self.model.latent_dim, device=real.device))
        acc = ((self.model.discriminator(real) > 0).float().sum() + (self.model.discriminator(fake) < 0).float().sum())
        self._val.append((2 * len(real), float(acc)))

    def validation_epoch_end(self) -> dict[str, float]:
        n = sum(v[0] for v in self._val)
        out = {"val_d_acc": sum(v[1] for v in self._val) / max(n, 1)}
        self._val = []
        if self.judge is not None and self.val_stats is not None:
            images, _ = self.sample(self.cfg.fid_epoch_samples, self.cfg.seed + 777)
            r = self.judge.score(images, self.val_stats)
            out.update(val_fid=r["fid"], val_classes_covered=r["coverage"]["covered"],
                       val_class_entropy=r["coverage"]["entropy"])
        return out


class SampleGrids(Callback):
    """Every ``every`` epochs: a grid of samples from fixed noise as ``samples/epoch_NNN.png`` and as a
    TensorBoard image; the task's per-step log appended to ``steps.csv`` (and TensorBoard scalars)."""

    def __init__(self, task: GenerativeTask, every: int = 1):
        self.task, self.every = task, every
        self.z, self.y = task.fixed_noise()

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        tb = next((cb.writer for cb in trainer.callbacks if isinstance(cb, TensorBoard)), None)
        steps = self.task.step_log
        if steps:
            path = trainer.run_dir / "steps.csv"
            old = []
            if path.is_file():
                from dcvkit.io import read_csv

                old = [r for r in read_csv(path) if int(r["step"]) < steps[0]["step"]]
            write_csv(path, old + steps)
            if tb is not None:
                for row in steps[:: max(1, len(steps) // 200)]:
                    for k, v in row.items():
                        if k != "step":
                            tb.add_scalar(f"step/{k}", v, int(row["step"]))
            self.task.step_log = []
        if self.every and (epoch % self.every == 0 or epoch == trainer.cfg.epochs):
            model = self.task.model
            was = model.training
            model.eval()
            dev = next(model.parameters()).device
            with torch.no_grad():
                imgs = to_uint8(model.generate(self.z.to(dev), self.y.to(dev) if self.y is not None else None))
            model.train(was)
            from dcvkit.viz.generate import image_grid, save_grid

            grid = image_grid(imgs, nrow=8)
            save_grid(grid, trainer.run_dir / "samples" / f"epoch_{epoch:03d}.png")
            if tb is not None:
                tb.add_image("samples", grid, epoch)
                tb.flush()


def generator_kwargs(cfg: GenerateConfig, splits: DataSplits) -> dict[str, Any]:
    """Registry kwargs: the data's classes and channels, the size to generate at, the model options given."""
    size = cfg.img_size or splits.img_size[0]
    if cfg.img_size is None and splits.img_size[0] != splits.img_size[1]:
        raise DataError(f"{cfg.data}: images are {splits.img_size[0]}x{splits.img_size[1]}; generative models need "
                        "square images: give --img-size")
    return model_kwargs(get_task("generate"), cfg, num_classes=splits.num_classes, in_chans=splits.channels,
                        img_size=int(size))


# --- train / evaluate ----------------------------------------------------------------------------------


def train(cfg: GenerateConfig, run_dir: str | os.PathLike | None = None, splits: DataSplits | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train a VAE or GAN; writes a run directory (config.yaml, best.pt/last.pt, metrics.csv, steps.csv,
    samples/epoch_NNN.png, tensorboard/, curves.png, results.json, samples.png, coverage.png and, for VAEs,
    reconstructions.png) and returns it."""
    cfg, ckpt, run_dir = start_config(cfg, run_dir)
    cfg = resolve_defaults(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    splits = splits if splits is not None else load_splits(cfg)
    kw = generator_kwargs(cfg, splits)
    model = create_model(cfg.model, **kw)  # before the judge: a model that cannot be built fails at once
    judge = judge_for(cfg, splits, log or _log(cfg))
    if judge is not None and cfg.fid_classifier == "auto":
        cfg = dataclasses.replace(cfg, fid_classifier=judge.path)
    spe = math.ceil(len(splits.train) / cfg.batch_size)
    val_stats = None
    if model.trainer == "gan" and judge is not None and splits.val is not None:
        val_stats = judge.stats(splits.val.images)  # each epoch's FID is against the validation split
    task = task_class(model)(model, cfg, list(splits.classes), kw, spe, judge, val_stats)
    splits = splits.val_as_test(cfg.data)  # an image folder without test/: score on validation
    return fit_run(task, cfg, splits, run_dir, "generate", evaluate, ckpt, val_batch=500, test=cfg.test,
                   callbacks=[SampleGrids(task, cfg.samples_every)])


def _log(cfg: GenerateConfig) -> Callable[[str], None] | None:
    if not cfg.progress:
        return None
    from dcvkit.engine.loop import console

    return lambda s: console.print(s, highlight=False)


def load_generator(weights: str | os.PathLike, device: str = "cpu", ckpt: dict[str, Any] | None = None
                   ) -> tuple[Generative, dict[str, Any]]:
    """A trained generative model (eval mode) and its meta, from a run directory or .pt file."""
    return load_run_model(weights, "generate", "dcv generate train", device, ckpt)  # type: ignore[return-value]


def evaluate(weights: str | os.PathLike, *, data: Any = None, split: str = "test", device: str = "auto",
             out_dir: str | os.PathLike | None = None, fid_classifier: str | None = None,
             samples: int | None = None, nll_samples: int | None = None, nll_images: int | None = None,
             inception: bool = True) -> dict[str, Any]:
    """The offline metrics of a trained run on a split:

    * VAEs: negative ELBO (weight 1) with its reconstruction and KL terms, the importance-sampled NLL
      estimate, active units;
    * both: FID-FMNIST of ``samples`` generated images against the split's images, the same for an
      untrained model of the same configuration (the floor to beat), and the class coverage of samples
      (cvae: also the share classified as the class asked for); standard Inception FID when torch-fidelity
      and the Inception weights are on this machine (``inception=False`` skips it).

    Writes results.json, samples.png, coverage.png (and reconstructions.png) into ``out_dir`` when given."""
    from dcvkit.engine import resolve_device

    ckpt = load_checkpoint(weights, map_location="cpu")
    model, meta = load_generator(weights, device, ckpt)
    cfg = resolve_defaults(from_dict(GenerateConfig, ckpt.get("config", {}), where=str(weights)))
    if fid_classifier is not None:
        cfg = dataclasses.replace(cfg, fid_classifier=fid_classifier)
    if data is None or isinstance(data, (str, os.PathLike)):
        if data is not None:
            cfg = dataclasses.replace(cfg, data=str(data))
        data = getattr(load_splits(cfg), split)
        if data is None:
            raise DataError(f"{cfg.data}: has no '{split}' split")
    if data.images.shape[1] != model.in_chans:
        raise DataError(f"data has {data.images.shape[1]} channels, the model expects {model.in_chans}")
    dev = resolve_device(device)
    task_cls = task_class(model)
    task = task_cls(model, cfg, meta["classes"], meta["model_kwargs"], 1)
    result: dict[str, Any] = {"model": meta["model"], "split": split, "images": len(data)}
    torch.manual_seed(cfg.seed)
    vae = model.trainer == "vae"
    if vae:
        result.update(vae_scores(model, data.images, data.labels, cfg, dev, nll_samples, nll_images))
    judge_path = cfg.fid_classifier if cfg.fid_classifier not in ("auto",) else meta.get("fid_classifier")
    judge = Judge(judge_path, dev) if judge_path and judge_path != "none" else None
    n = samples or cfg.fid_samples
    fake, asked = task.sample(n, cfg.seed + 999) if judge is not None or inception else (None, None)
    if judge is not None:
        ref = judge.stats(data.images)
        r = judge.score(fake, ref, asked)
        torch.manual_seed(cfg.seed)
        untrained = create_model(meta["model"], **meta["model_kwargs"]).to(dev).eval()
        floor = task_cls(untrained, cfg, meta["classes"], meta["model_kwargs"], 1)
        r_floor = judge.score(floor.sample(n, cfg.seed + 999)[0], ref)
        result.update({"fid_fmnist": r["fid"], "fid_fmnist_untrained": r_floor["fid"], "fid_samples": n,
                       "fid_classifier": judge.path, "coverage": r["coverage"]})
        if "conditional_accuracy" in r:
            result["conditional_accuracy"] = r["conditional_accuracy"]
    if inception:
        result["inception_fid"], result["inception_fid_note"] = inception_fid(data.images, fake, dev)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "results.json", result)
        from dcvkit.viz.generate import image_grid, plot_coverage, save_grid

        imgs, _ = task.sample(64, cfg.seed + 1)
        save_grid(image_grid(imgs, nrow=8), out_dir / "samples.png")
        if "coverage" in result:
            plot_coverage(result["coverage"], out_dir / "coverage.png",
                          title=f"{meta['model']}: classes of {n:,} samples (FID-FMNIST {result['fid_fmnist']:.1f})")
        if vae:
            x = to_unit(data.images[:16].to(dev), model.img_size)
            y = data.labels[:16].to(dev) if model.num_classes else None
            with torch.no_grad():
                mu, _ = model.encode(x, y)
                rec = to_uint8(model.generate(mu, y))
            save_grid(image_grid(torch.cat([to_uint8(x), rec]), nrow=16), out_dir / "reconstructions.png")
    return result


@torch.no_grad()
def elbo_and_nll(model: Any, images: Tensor, labels: Tensor | None, reconstruction: str, nll_images: int,
                 nll_samples: int, dev: torch.device, batch: int = 500) -> dict[str, Any]:
    """Negative ELBO (weight 1, z sampled once per image) with its terms, the importance-sampled NLL on the
    first ``nll_images`` images (0: all), and the posterior means ``mu`` (N, D), for any VAE-like model:
    ``encode(x, y) -> mu, logvar``, ``decode(z, y) -> logits``, ``img_size``, ``num_classes``."""
    rec_sum = kl_sum = 0.0
    mus = []

    def batch_of(i: int, j: int) -> tuple[Tensor, Tensor | None]:
        y = labels[i:j].to(dev) if model.num_classes and labels is not None else None
        return to_unit(images[i:j].to(dev), model.img_size), y

    for i in range(0, len(images), batch):
        x, y = batch_of(i, i + batch)
        mu, logvar = model.encode(x, y)
        logits = model.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu), y)
        out = negative_elbo(logits, x, mu, logvar, reconstruction, 1.0)
        rec_sum += float(out["reconstruction"]) * len(x)
        kl_sum += float(out["kl"]) * len(x)
        mus.append(mu.float().cpu())
    n = len(images)
    m = n if not nll_images else min(nll_images, n)
    step = max(1, batch // 4)
    nll = [importance_sampled_nll(model, *batch_of(i, min(m, i + step)), nll_samples, reconstruction)
           for i in range(0, m, step)]
    return {"neg_elbo": (rec_sum + kl_sum) / n, "reconstruction": rec_sum / n, "kl": kl_sum / n,
            "nll": float(torch.cat(nll).mean()) if nll else math.nan, "nll_samples": nll_samples, "nll_images": m,
            "mu": torch.cat(mus)}


@torch.no_grad()
def vae_scores(model: Any, images: Tensor, labels: Tensor, cfg: GenerateConfig, dev: torch.device,
               nll_samples: int | None = None, nll_images: int | None = None) -> dict[str, Any]:
    """:func:`elbo_and_nll` with the run's settings, plus active units."""
    r = elbo_and_nll(model, images, labels, cfg.reconstruction,
                     nll_images if nll_images is not None else cfg.nll_images, nll_samples or cfg.nll_samples, dev)
    mu = r.pop("mu")
    return {**r, "active_units": active_units(mu), "latent_dim": model.latent_dim,
            "reconstruction_loss": cfg.reconstruction}


__all__ = ["GenerateConfig", "VAETask", "GANTask", "judge_for", "train", "evaluate", "load_generator", "load_splits",
           "resolve_defaults", "generator_class", "task_class", "vae_scores", "elbo_and_nll"]
