"""The latent space as a tool: ``dcv generate sample|reconstruct|interpolate|arithmetic|traverse RUN``.

Pure functions first (:func:`lerp`, :func:`slerp`, :func:`class_weights`), then the commands, each of which
writes PNGs into ``out_dir`` and returns their paths:

* :func:`sample`: a grid of samples from the prior (a conditional model: one row per class asked for, or a
  mix such as ``Sneaker=0.5,Sandal=0.5``);
* :func:`reconstruct` (VAEs): inputs above their reconstructions;
* :func:`interpolate`: rows from one latent point to another, linear or spherical (slerp keeps the norm a
  Gaussian sample has; a straight line passes through the low-probability centre), between two images (VAEs)
  or two random points; a conditional model also interpolates its class label at a fixed z (0.5/0.5 halfway);
* :func:`arithmetic`: mean z of group A - mean z of group B + z of C. VAEs: groups are test images of a class
  (their posterior means) and C a test image; GANs: groups are samples the run's classifier puts in the class;
* :func:`traverse`: one latent dimension at a time from -r to r around a base point (VAEs: the dimensions with
  the largest KL first); a 2-D VAE also gets the decoded latent grid (``latent_grid.png``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from dcvkit.choices import INTERPOLATIONS
from dcvkit.data.core import parse_classes
from dcvkit.errors import ConfigError, DataError
from dcvkit.metrics.fid import Judge
from dcvkit.models.generate.base import to_uint8, to_unit
from dcvkit.tasks.generate import load_generator
from dcvkit.viz.generate import image_grid, plot_latent_grid, plot_rows, save_grid

METHODS = INTERPOLATIONS


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """(1 - t) a + t b for each t: a, b (D,), t (T,) -> (T, D)."""
    return (1 - t)[:, None] * a + t[:, None] * b


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for generative models): along the great circle
    between a and b, norms interpolated linearly. a, b (D,), t (T,) -> (T, D). Falls back to :func:`lerp`
    when a and b are (anti)parallel."""
    na, nb = a.norm(), b.norm()
    cos = (a @ b / (na * nb).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4 or (torch.pi - omega).abs() < 1e-4:
        return lerp(a, b, t)
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega)[:, None] * a / na + torch.sin(t * omega)[:, None] * b / nb) / so
    return direction * ((1 - t) * na + t * nb)[:, None]


def interpolation(a: Tensor, b: Tensor, steps: int, method: str = "slerp") -> Tensor:
    if method not in METHODS:
        raise ConfigError(f"unknown interpolation '{method}'; choose {', '.join(METHODS)}")
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device)
    return slerp(a, b, t) if method == "slerp" else lerp(a, b, t)


def class_weights(spec: str, classes: Sequence[str]) -> Tensor:
    """``"Sneaker=0.5,Sandal=0.5"`` (names or indices; weights default to equal shares) -> (K,) weights
    summing to 1."""
    w = torch.zeros(len(classes))
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        ids = parse_classes(name.strip(), list(classes))
        try:
            v = float(value) if value else 1.0
        except ValueError:
            raise ConfigError(f"--mix: '{part}' is not class=weight") from None
        if v < 0:
            raise ConfigError(f"--mix: negative weight in '{part}'")
        w[ids] += v
    if w.sum() <= 0:
        raise ConfigError(f"--mix '{spec}': give at least one class with a positive weight")
    return w / w.sum()


class Latent:
    """A trained run loaded for latent-space work: model, meta, device, the run's test images."""

    def __init__(self, weights: str | os.PathLike, device: str = "auto", seed: int = 0):
        from dcvkit.engine import resolve_device

        from dcvkit.io import load_checkpoint

        self.device = resolve_device(device)
        self.weights = weights
        ckpt = load_checkpoint(weights)  # read once: the model and, for test_data, the run's config
        self.model, self.meta = load_generator(weights, str(self.device), ckpt)
        self.config: dict[str, Any] = dict(ckpt.get("config", {}))
        self.classes: list[str] = list(self.meta["classes"])
        self.vae = self.model.trainer == "vae"
        self.g = torch.Generator().manual_seed(seed)
        self._data: Any = None

    @property
    def conditional(self) -> bool:
        return self.model.num_classes > 0

    def prior(self, n: int) -> Tensor:
        return torch.randn(n, self.model.latent_dim, generator=self.g).to(self.device)

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """uint8 images for latent codes z (n, D) (and classes: ids (n,) or weights (n, K))."""
        if self.conditional and y is None:
            raise ConfigError("this run is class-conditional: give --classes or --mix")
        return to_uint8(self.model.generate(z.to(self.device), y.to(self.device) if y is not None else None))

    @torch.no_grad()
    def encode(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """Posterior means (n, D) of uint8 images (VAEs only)."""
        self.need_vae("encoding images")
        x = to_unit(images.to(self.device), self.model.img_size)
        return self.model.encode(x, labels.to(self.device) if self.conditional and labels is not None else None)[0]

    def need_vae(self, what: str) -> None:
        if not self.vae:
            raise ConfigError(f"{what} needs an encoder: this is a {self.meta['model']} run; train a vae or cvae")

    def test_data(self) -> Any:
        """The test split of the data the run was trained on."""
        if self._data is None:
            from dcvkit.config import from_dict
            from dcvkit.tasks.generate import GenerateConfig, load_splits

            cfg = from_dict(GenerateConfig, self.config, where=str(self.weights))
            splits = load_splits(cfg)
            self._data = splits.test if splits.test is not None else splits.val
            if self._data is None:
                raise DataError(f"{cfg.data}: no test or validation split to take images from")
        return self._data

    def images(self, specs: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Images named by test-set indices (``123``) or image files, as uint8 (n, C, H, W) at the data's
        size, with their labels (-1 for files)."""
        from dcvkit.data.folders import decode

        out, labels = [], []
        for s in specs:
            if s.isdigit():
                data = self.test_data()
                i = int(s)
                if i >= len(data):
                    raise DataError(f"image index {i} is out of range: the test split has {len(data)} images")
                out.append(data.images[i])
                labels.append(int(data.labels[i]))
                continue
            p = Path(s)
            if not p.is_file():
                raise DataError(f"{s}: neither a test-set index nor an image file")
            size = self.model.img_size
            out.append(torch.from_numpy(decode(p, self.model.in_chans, (size, size))))
            labels.append(-1)
        sizes = {tuple(o.shape[-2:]) for o in out}
        if len(sizes) > 1:
            size = self.model.img_size
            out = [to_uint8(to_unit(o[None], size))[0] for o in out]
        return torch.stack(out), torch.tensor(labels)

    def class_images(self, name: str, n: int) -> tuple[Tensor, Tensor]:
        """The first n test images of a class."""
        k = parse_classes(name, self.classes)
        if len(k) != 1:
            raise ConfigError(f"'{name}': give one class")
        data = self.test_data()
        idx = (data.labels == k[0]).nonzero().flatten()[:n]
        if len(idx) == 0:
            raise DataError(f"no test images of class '{self.classes[k[0]]}'")
        return data.images[idx], data.labels[idx]


def _out(out_dir: str | os.PathLike) -> Path:
    p = Path(out_dir)
    p.mkdir(parents=True, exist_ok=True)
    return p


def sample(weights: str | os.PathLike, out_dir: str | os.PathLike, n: int = 64, classes: str | None = None,
           mix: str | None = None, seed: int = 0, device: str = "auto") -> list[Path]:
    """``samples.png``: n samples from the prior; a conditional run: 8 per class asked for (rows), or n of a
    mix (``--mix Sneaker=0.5,Sandal=0.5``)."""
    L = Latent(weights, device, seed)
    out = _out(out_dir)
    if not L.conditional:
        if classes or mix:
            raise ConfigError(f"--classes/--mix need a class-conditional run (cvae); this is {L.meta['model']}")
        return [save_grid(image_grid(L.decode(L.prior(n)), nrow=8), out / "samples.png")]
    if mix:
        w = class_weights(mix, L.classes)
        imgs = L.decode(L.prior(n), w.expand(n, -1))
        rows = [(mix if i == 0 else "", imgs[i:i + 8]) for i in range(0, n, 8)]
        return [plot_rows(rows, out / "samples.png", title=f"{L.meta['model']}: classes mixed {mix}")]
    ids = parse_classes(classes, L.classes) if classes else list(range(len(L.classes)))
    z = L.prior(8)  # the same 8 codes in every row: the class changes, the "style" stays
    rows = [(L.classes[k], L.decode(z, torch.full((8,), k))) for k in ids]
    title = f"{L.meta['model']}: the same 8 latent codes, one row per class"
    return [plot_rows(rows, out / "samples.png", title=title)]


def reconstruct(weights: str | os.PathLike, out_dir: str | os.PathLike, images: Sequence[str] = (), n: int = 16,
                device: str = "auto") -> list[Path]:
    """``reconstructions.png``: test images (or the given ones) above their reconstructions (posterior means)."""
    L = Latent(weights, device)
    L.need_vae("reconstruction")
    if images:
        x, y = L.images(images)
    else:
        data = L.test_data()
        x, y = data.images[:n], data.labels[:n]
    y_cond = y.clamp_min(0) if L.conditional else None
    if L.conditional and (y < 0).any():
        raise ConfigError("a class-conditional run reconstructs test-set images (give indices), whose class it knows")
    rec = L.decode(L.encode(x, y_cond), y_cond)
    x = to_uint8(to_unit(x, L.model.img_size))
    return [plot_rows([("input", x), ("reconstruction", rec)], _out(out_dir) / "reconstructions.png")]


def interpolate(weights: str | os.PathLike, out_dir: str | os.PathLike, a: str | None = None, b: str | None = None,
                steps: int = 10, method: str = "slerp", pairs: int = 4, classes: str | None = None, seed: int = 0,
                device: str = "auto") -> list[Path]:
    """``interpolate.png``: ``pairs`` rows between random prior points, or one row between images ``a`` and
    ``b`` (VAEs: test indices or files), each with linear and spherical rows when ``method`` is ``both``.
    A conditional run with ``classes="A,B"``: ``class_interpolation.png``, the label going from A to B
    (0.5/0.5 halfway) at fixed latent codes."""
    L = Latent(weights, device, seed)
    out = _out(out_dir)
    methods = METHODS if method == "both" else (method,)
    paths = []
    if (a is None) != (b is None):
        raise ConfigError("give both images (--a and --b) or neither (random points)")
    rows: list[tuple[str, Tensor]] = []
    if a is not None:
        x, y = L.images([a, b])  # type: ignore[list-item]
        y_cond = y.clamp_min(0) if L.conditional else None
        z = L.encode(x, y_cond)
        for m in methods:
            zs = interpolation(z[0], z[1], steps, m)
            yc = None
            if L.conditional:
                assert y_cond is not None
                oh = torch.nn.functional.one_hot(y_cond, len(L.classes)).float()
                yc = lerp(oh[0], oh[1], torch.linspace(0, 1, steps))
            rows.append((m, L.decode(zs, yc)))
        rows = [("inputs", to_uint8(to_unit(x, L.model.img_size)))] + rows
    else:
        for i in range(pairs):
            za, zb = L.prior(2)
            y = None
            if L.conditional:
                k = int(torch.randint(len(L.classes), (1,), generator=L.g))
                y = torch.full((steps,), k)
            for m in methods:
                label = f"{i + 1}: {m}" if len(methods) > 1 else str(i + 1)
                rows.append((label, L.decode(interpolation(za, zb, steps, m), y)))
    paths.append(plot_rows(rows, out / "interpolate.png",
                           title=f"{L.meta['model']}: {' vs '.join(methods)} interpolation, {steps} steps"))
    if classes:
        if not L.conditional:
            raise ConfigError("--classes interpolates the class label of a conditional run (cvae)")
        ids = parse_classes(classes, L.classes)
        if len(ids) != 2:
            raise ConfigError(f"--classes '{classes}': give two classes, e.g. Sneaker,Sandal")
        t = torch.linspace(0, 1, steps)
        oh = torch.eye(len(L.classes))
        yw = lerp(oh[ids[0]], oh[ids[1]], t)
        crow = [(f"z{i + 1}", L.decode(z.expand(steps, -1), yw)) for i, z in enumerate(L.prior(4))]
        paths.append(plot_rows(crow, out / "class_interpolation.png", col_titles=[f"{float(v):.2f}" for v in t],
                               title=f"label from {L.classes[ids[0]]} (0.00) to {L.classes[ids[1]]} (1.00)"))
    return paths


def arithmetic(weights: str | os.PathLike, out_dir: str | os.PathLike, plus: str, minus: str, to: str,
               n: int = 8, group: int = 64, seed: int = 0, device: str = "auto",
               fid_classifier: str | None = None, min_confidence: float = 0.9) -> list[Path]:
    """``arithmetic.png``: mean z(``plus``) - mean z(``minus``) + z(c) for n items c of ``to``.

    ``plus``/``minus``/``to`` are classes (or, for VAEs, ``to`` may also be test indices or image files,
    comma-separated). VAEs average the posterior means of ``group`` test images per class; GANs average the
    codes of ``group`` samples that the run's FID classifier puts in the class with probability at least
    ``min_confidence``."""
    L = Latent(weights, device, seed)
    if L.conditional:
        raise ConfigError("latent arithmetic on a class-conditional run mixes two ways of saying the class; use a vae "
                          "(or interpolate the cvae's labels: dcv generate interpolate --classes A,B)")
    if L.vae:
        za = L.encode(L.class_images(plus, group)[0]).mean(0)
        zb = L.encode(L.class_images(minus, group)[0]).mean(0)
        specs = [s.strip() for s in to.split(",")]
        if all(s.isdigit() or Path(s).is_file() for s in specs):
            xc = L.images(specs)[0]
        else:
            xc = L.class_images(to, n)[0]
        zc = L.encode(xc)
        shown = to_uint8(to_unit(xc, L.model.img_size))
    else:
        path = fid_classifier or L.meta.get("fid_classifier")
        if not path:
            raise ConfigError("GAN arithmetic labels samples with a classifier: give --fid-classifier RUN")
        judge = Judge(path, L.device)
        z_all = L.prior(4000)
        ids, conf = judge.label(L.decode(z_all))
        means = []
        for name in (plus, minus, to):
            k = parse_classes(name, judge.classes)
            sel = z_all[((ids == k[0]) & (conf >= min_confidence)).to(z_all.device)]
            if len(sel) < 2:
                raise DataError(f"only {len(sel)} of 4000 samples are '{name}' to the classifier with probability >= "
                                f"{min_confidence}: the GAN barely generates it (see coverage.png)")
            means.append(sel)
        za, zb = means[0][:group].mean(0), means[1][:group].mean(0)
        zc = means[2][:n]
        shown = L.decode(zc)
    result = L.decode(za - zb + zc)
    rows = [(f"mean {plus}", L.decode(za[None])), (f"mean {minus}", L.decode(zb[None])), (to, shown),
            (f"{to} - {minus} + {plus}", result)]
    title = f"{L.meta['model']}: z({to}) - mean z({minus}) + mean z({plus})"
    return [plot_rows(rows, _out(out_dir) / "arithmetic.png", title=title)]


def traverse(weights: str | os.PathLike, out_dir: str | os.PathLike, dims: Sequence[int] | None = None,
             extent: float = 3.0, steps: int = 9, base: str | None = None, seed: int = 0, device: str = "auto",
             grid: int = 15) -> list[Path]:
    """``traverse.png``: each row moves one latent dimension from -extent to extent around a base point (a
    test image's posterior mean with ``base``, else 0); VAEs order the dimensions by their KL on test images
    (the most informative first), up to 10. A 2-D latent also gives ``latent_grid.png`` (grid x grid)."""
    L = Latent(weights, device, seed)
    D = L.model.latent_dim
    y = None
    if base is not None:
        x, lab = L.images([base])
        y = lab.clamp_min(0) if L.conditional else None
        z0 = L.encode(x, y)[0]
    else:
        z0 = torch.zeros(D, device=L.device)
        if L.conditional:
            y = torch.zeros(1, dtype=torch.long)
    order: list[int]
    if dims:
        bad = [d for d in dims if not 0 <= d < D]
        if bad:
            raise ConfigError(f"--dims {bad}: the latent has dimensions 0-{D - 1}")
        order = list(dims)
    elif L.vae:
        data = L.test_data()
        with torch.no_grad():
            x = to_unit(data.images[:1000].to(L.device), L.model.img_size)
            yy = data.labels[:1000].to(L.device) if L.conditional else None
            mu, logvar = L.model.encode(x, yy)
            kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0)
        order = kl.argsort(descending=True)[:10].tolist()
    else:
        order = list(range(min(10, D)))
    values = torch.linspace(-extent, extent, steps)
    rows = []
    for d in order:
        z = z0.expand(steps, -1).clone()
        z[:, d] = values.to(z.device)
        rows.append((f"z[{d}]", L.decode(z, y.expand(steps) if y is not None else None)))
    out = _out(out_dir)
    paths = [plot_rows(rows, out / "traverse.png", col_titles=[f"{float(v):+.1f}" for v in values],
                       title=f"{L.meta['model']}: one latent dimension at a time")]
    if D == 2:
        from torch.distributions import Normal

        # Kingma & Welling's manifold figure: a grid through the Gaussian's quantiles, so it covers the prior.
        q = Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, grid))
        zz = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)
        yg = y.expand(len(zz)) if y is not None else None
        paths.append(plot_latent_grid(L.decode(zz, yg), grid, out / "latent_grid.png", float(q[-1])))
    return paths


__all__ = ["lerp", "slerp", "interpolation", "class_weights", "Latent", "sample", "reconstruct", "interpolate",
           "arithmetic", "traverse", "METHODS"]
