"""Families describe themselves: a detector and a generator registered here, outside the package, train,
evaluate and export through the public functions and through the CLI with no edit to dcvkit. What the
tasks need to know about them (kind, training defaults, trainer, export outputs) comes from their classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from conftest import run
from dcvkit.data import coco
from dcvkit.data.annotations import AnnotatedImage, Annotations
from dcvkit.losses.detection import yolo_loss
from dcvkit.models import model_entry, register_model
from dcvkit.models.detect.base import Detector
from dcvkit.models.detect.postprocess import PostProcess
from dcvkit.models.detect.targets import centre_assign
from dcvkit.models.generate.base import Generative

# --- a detector of our own: three convolutions to a stride-8 grid, one box and the class scores per cell ---


class TinyGrid(Detector):
    kind = "grid"
    proposal_method = "none"
    defaults = {"epochs": 2, "batch_size": 4, "rois_per_image": 0, "mosaic": 0.0, "monitor": "val_map50"}
    export_outputs = ("boxes", "scores")
    stride = 8

    def __init__(self, *, num_classes: int = 2, in_chans: int = 3, img_size=64, width: float = 1.0):
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        c = max(8, int(16 * width))
        self.net = nn.Sequential(nn.Conv2d(in_chans, c, 3, 2, 1), nn.ReLU(), nn.Conv2d(c, c, 3, 2, 1), nn.ReLU(),
                                 nn.Conv2d(c, c, 3, 2, 1), nn.ReLU(), nn.Conv2d(c, 5 + num_classes, 1))

    def _split(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.net(images)
        n, _, h, w = out.shape
        flat = out.flatten(2).transpose(1, 2)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        centres = (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * self.stride
        dist = torch.exp(flat[..., :4].clamp(max=6)) * self.stride
        return torch.cat([centres - dist[..., :2], centres + dist[..., 2:]], -1), flat[..., 4], flat[..., 5:], centres

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        boxes, obj, cls, _ = self._split(images)
        return boxes, torch.sigmoid(obj)[..., None] * torch.sigmoid(cls)

    def forward_export(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.predict(images)

    def loss(self, images, boxes, labels, proposals=None, **_):
        pred, obj, cls, centres = self._split(images)
        matched = torch.stack([centre_assign(centres, b.float(), self.stride) for b in boxes])
        return yolo_loss(pred, obj, cls, matched, [b.float() for b in boxes], list(labels))

    @torch.inference_mode()
    def detect(self, images, proposals=None, post=PostProcess()):
        boxes, scores = self.predict(images)
        return [post(b, s, tuple(images.shape[-2:])) for b, s in zip(boxes, scores)]


def tiny_grid(num_classes: int = 2, in_chans: int = 3, img_size=64, width: float | None = None) -> TinyGrid:
    """A test detector registered outside the package."""
    return TinyGrid(num_classes=num_classes, in_chans=in_chans, img_size=img_size, width=width or 1.0)


# --- a generator of our own: an MLP VAE with a 4-d latent -------------------------------------------------


class TinyVAE(Generative):
    trainer = "vae"
    defaults = {"epochs": 2, "lr": 3e-3, "monitor": "val_loss"}

    def __init__(self, *, in_chans: int = 1, img_size: int = 28, latent_dim: int = 4, num_classes: int = 0):
        super().__init__()
        self.in_chans, self.img_size, self.latent_dim, self.num_classes = in_chans, img_size, latent_dim, num_classes
        n = in_chans * img_size * img_size
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, 2 * latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, n),
                                 nn.Unflatten(1, (in_chans, img_size, img_size)))

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar = self.enc(x).chunk(2, 1)
        return mu, logvar

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.dec(z)

    def forward(self, x: Tensor, y: Tensor | None = None):
        mu, logvar = self.encode(x)
        return self.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu)), mu, logvar

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decode(z).sigmoid()


def tiny_vae(num_classes: int = 10, in_chans: int = 1, img_size: int = 28, latent_dim: int | None = None) -> TinyVAE:
    """A test generator registered outside the package."""
    return TinyVAE(in_chans=in_chans, img_size=int(img_size), latent_dim=latent_dim or 4)


@pytest.fixture(autouse=True, scope="module")
def registered():
    """The two builders registered as any outside module would (``@register_model``), for this module's tests
    only: the rest of the suite counts the package's own models."""
    from dcvkit.models import registry

    for task, builder in (("detect", tiny_grid), ("generate", tiny_vae)):
        register_model(task)(builder)
    yield
    for name in ("tiny_grid", "tiny_vae"):
        registry._REGISTRY.pop(name)


def squares(root: Path, n: int = 24, size: int = 64) -> Path:
    """Images with one or two squares: bright ones are class 'bright', grey ones 'grey' (a COCO file)."""
    rng = np.random.default_rng(0)
    ann = Annotations(root, ["bright", "grey"])
    (root / "images").mkdir(parents=True)
    for i in range(n):
        img = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
        boxes, labels = [], []
        for k in range(1 + i % 2):
            s = int(rng.integers(14, 24))
            x, y = int(rng.integers(0, size - s)), int(rng.integers(0, size - s))
            if any(x < b[2] and b[0] < x + s and y < b[3] and b[1] < y + s for b in boxes):
                continue
            label = int(rng.integers(0, 2))
            img[y:y + s, x:x + s] = 230 if label == 0 else 120
            boxes.append([x, y, x + s, y + s])
            labels.append(label)
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        ann.images.append(AnnotatedImage(f"images/{i:03d}.png", size, size, torch.tensor(boxes, dtype=torch.float32),
                                         torch.tensor(labels)))
    return coco.write(ann, root / "annotations.json")


def test_the_registry_reads_the_families_from_their_classes():
    assert model_entry("tiny_grid").model_class is TinyGrid and model_entry("tiny_grid").task == "detect"
    assert model_entry("tiny_vae").model_class.trainer == "vae"
    assert model_entry("tiny_grid").options >= {"width", "num_classes"}


def test_an_outside_detector_trains_evaluates_and_exports(tmp_path):
    from dcvkit.export import export
    from dcvkit.tasks import get_task

    data = squares(tmp_path / "squares")
    task = get_task("detect")
    cfg = task.config(data=str(data), model="tiny_grid", val_split=0.25, progress=False, tensorboard=False,
                      lr=0.01, project=str(tmp_path / "runs"), test_data=str(data))
    result = task.train(cfg)
    # the family's defaults, not the lineage's: 2 epochs of batch 4, val_map50 monitored
    assert result.config.epochs == 2 and result.config.batch_size == 4 and result.config.monitor == "val_map50"
    assert result.fit.epochs_run == 2 and "val_map50" in result.fit.history[-1]
    r = task.evaluate(result.run_dir, data=str(data), out_dir=tmp_path / "val")
    assert r["model"] == "tiny_grid" and r["images"] == 24 and 0 <= r["map"] <= r["map50"] <= 1
    rep = export(result.run_dir, check=4)
    assert rep["ok"] and rep["outputs"] == ["boxes", "scores"] and Path(rep["file"]).is_file()


def test_an_outside_detector_through_the_cli(tmp_path, capsys):
    data = squares(tmp_path / "squares")
    code, out, err = run(capsys, "detect", "train", "--model", "tiny_grid", "--data", str(data), "--val-split", "0.25",
                         "--test-data", str(data), "--no-progress", "--no-tensorboard")
    assert code == 0, err
    assert "test mAP@0.5" in out
    run_dir = Path("runs/detect/exp")
    code, out, err = run(capsys, "detect", "val", str(run_dir))
    assert code == 0, err
    code, out, err = run(capsys, "detect", "predict", str(run_dir), str(tmp_path / "squares/images/000.png"),
                         "--out", str(tmp_path / "boxes"))
    assert code == 0 and json.loads((tmp_path / "boxes/predictions.json").read_text()) is not None
    code, out, err = run(capsys, "export", str(run_dir), "--check", "4")
    assert code == 0, err
    assert "same boxes and classes: True" in out


def test_an_outside_generator_trains_evaluates_and_exports(idx_dir, tmp_path, capsys):
    from dcvkit.export import export
    from dcvkit.tasks import get_task

    task = get_task("generate")
    cfg = task.config(model="tiny_vae", data="fashion-mnist", data_dir=str(idx_dir), limit=200, batch_size=50,
                      fid_classifier="none", progress=False, tensorboard=False, project=str(tmp_path / "runs"))
    result = task.train(cfg)
    assert result.config.epochs == 2 and result.config.lr == 3e-3 and result.config.monitor == "val_loss"
    assert result.fit.epochs_run == 2 and result.test["neg_elbo"] > 0 and result.test["active_units"] <= 4
    r = task.evaluate(result.run_dir, fid_classifier="none", nll_images=50, nll_samples=4, inception=False)
    assert r["model"] == "tiny_vae" and r["latent_dim"] == 4
    rep = export(result.run_dir, check=8)
    assert rep["ok"] and rep["outputs"] == ["images"] and rep["inputs"] == {"z": "float32 (N, 4)"}
    # and through the CLI: train, evaluate, a latent tool, export
    code, out, err = run(capsys, "generate", "train", "--model", "tiny_vae", "--data-dir", str(idx_dir),
                         "--limit", "200", "--batch-size", "50", "--fid-classifier", "none", "--no-progress",
                         "--no-tensorboard")
    assert code == 0, err
    run_dir = Path("runs/generate/exp")
    for argv in (["generate", "eval", str(run_dir), "--nll-images", "20", "--nll-samples", "2"],
                 ["generate", "sample", str(run_dir), "--out", str(tmp_path / "latent")],
                 ["export", str(run_dir), "--check", "4"]):
        code, out, err = run(capsys, *argv)
        assert code == 0, (argv, err)
    assert (tmp_path / "latent" / "samples.png").is_file()
