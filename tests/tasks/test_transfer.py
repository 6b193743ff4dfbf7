"""Transfer learning: pretrained weights from dcvkit runs and state-dict files, new heads, freezing."""

from __future__ import annotations

import pytest
import torch

from dcvkit.cli.main import main
from dcvkit.errors import CheckpointError, ConfigError
from dcvkit.io import load_checkpoint
from dcvkit.tasks.classify import ClassifyConfig, train


def _cfg(idx_dir, **kw) -> ClassifyConfig:
    base = dict(data="fashion-mnist", data_dir=str(idx_dir), model="cnn_tiny", epochs=1, batch_size=32,
                progress=False, tensorboard=False, test=False)
    return ClassifyConfig(**{**base, **kw})


@pytest.fixture
def pretrained_run(idx_dir):
    return train(_cfg(idx_dir, classes="0-4", name="pre")).run_dir


def _backbone(sd):
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def test_frozen_backbone_stays_fixed_and_head_is_new(idx_dir, pretrained_run):
    pre = load_checkpoint(pretrained_run / "best.pt")
    res = train(_cfg(idx_dir, classes="5-9", per_class=20, val_split=0, epochs=2, pretrained=str(pretrained_run),
                     freeze_backbone=True))
    after = load_checkpoint(res.run_dir / "last.pt")
    assert after["meta"]["classes"] == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    for k, v in _backbone(pre["model"]).items():  # weights and batch-norm statistics untouched
        assert torch.equal(v, after["model"][k]), k
    assert not torch.equal(pre["model"]["fc.weight"], after["model"]["fc.weight"])


def test_unfreeze_at_fine_tunes_the_backbone_with_its_lower_lr(idx_dir, pretrained_run):
    pre = load_checkpoint(pretrained_run / "best.pt")
    res = train(_cfg(idx_dir, classes="5-9", per_class=20, val_split=0, epochs=2, pretrained=str(pretrained_run),
                     freeze_backbone=True, unfreeze_at=2, scheduler="none", lr=0.05, backbone_lr=0.1,
                     small_data=False))
    after = load_checkpoint(res.run_dir / "last.pt")
    assert not torch.equal(pre["model"]["blocks.0.0.weight"], after["model"]["blocks.0.0.weight"])
    lrs = sorted({g["lr"] for g in after["optimizer"]["param_groups"]})
    assert lrs == pytest.approx([0.005, 0.05])


def test_same_classes_keep_the_head(idx_dir, pretrained_run):
    pre = load_checkpoint(pretrained_run / "best.pt")
    res = train(_cfg(idx_dir, classes="0-4", epochs=1, pretrained=str(pretrained_run), lr=1e-9, scheduler="none"))
    after = load_checkpoint(res.run_dir / "last.pt")
    assert torch.allclose(pre["model"]["fc.weight"], after["model"]["fc.weight"], atol=1e-6)


def test_torchvision_state_dict_file_rgb_weights_on_gray_images(idx_dir, tmp_path):
    import torchvision

    tv = torchvision.models.resnet18()  # 1000 classes, RGB, 7x7 stem; randomly initialised (no download)
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    res = train(_cfg(idx_dir, model="resnet18", stem="imagenet", limit=64, pretrained=str(tmp_path / "resnet18.pth"),
                     freeze_backbone=True))
    after = load_checkpoint(res.run_dir / "last.pt")
    assert after["model"]["conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.allclose(after["model"]["conv1.weight"], tv.conv1.weight.sum(1, keepdim=True))
    assert after["model"]["fc.weight"].shape == (10, 512)


def test_imagenet_statistics_for_gray_input():
    from dcvkit.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, Pretrained, input_stats

    pre = Pretrained("x", {}, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert input_stats(pre, 3) == (IMAGENET_MEAN, IMAGENET_STD)
    assert input_stats(pre, 1)[0] == pytest.approx([sum(IMAGENET_MEAN) / 3])
    assert input_stats(Pretrained("y", {}), 1) is None  # unknown: the data's own statistics are used


def test_mismatched_pretrained_names_the_layers(idx_dir, tmp_path, capsys):
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    code = main(["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "resnet18",
                 "--pretrained", str(tmp_path / "r18.pth"), "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "conv1.weight (64, 3, 7, 7) in the file vs (64, 1, 3, 3) in the model" in err and "--stem" in err


def test_architecture_mismatch_says_which_model(idx_dir, pretrained_run):
    with pytest.raises(CheckpointError, match="holds a 'cnn_tiny', use --model cnn_tiny"):
        train(_cfg(idx_dir, model="resnet20", pretrained=str(pretrained_run)))


def test_torchvision_weights_name_is_not_downloaded_without_asking(idx_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(CheckpointError, match="not in the local torch cache.*--download"):
        train(_cfg(idx_dir, model="resnet18", pretrained="ResNet18_Weights.IMAGENET1K_V1"))
    with pytest.raises(CheckpointError, match="not a torchvision weights name"):
        train(_cfg(idx_dir, model="resnet18", pretrained="no_such_weights"))


def test_freeze_without_pretrained_is_refused(idx_dir):
    with pytest.raises(ConfigError, match="--freeze-backbone needs --pretrained"):
        train(_cfg(idx_dir, freeze_backbone=True))


def test_resnet18_on_an_rgb_folder_of_any_size(tmp_path, capsys):
    """The issue's case: torchvision-format weights, a folder of RGB images of mixed sizes, resized to the input."""
    import numpy as np
    import torchvision
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(24):
        cls = ("red", "blue")[i % 2]
        h, w = int(rng.integers(30, 90)), int(rng.integers(30, 90))
        img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        img[..., 0 if cls == "red" else 2] += 150
        (tmp_path / "photos" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "photos" / cls / f"{i}.png")
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    code = main(["classify", "train", "--data", str(tmp_path / "photos"), "--img-size", "64", "--channels", "3",
                 "--model", "resnet18", "--pretrained", str(tmp_path / "resnet18.pth"), "--freeze-backbone",
                 "--epochs", "1", "--batch-size", "8", "--no-progress", "--no-tensorboard", "--name", "rgb"])
    assert code == 0
    ckpt = load_checkpoint("runs/classify/rgb/last.pt")
    assert ckpt["meta"]["model_kwargs"]["img_size"] == [64, 64] and ckpt["meta"]["classes"] == ["blue", "red"]
    assert torch.equal(ckpt["model"]["layer1.0.conv1.weight"], tv.layer1[0].conv1.weight)  # frozen backbone
    odd = tmp_path / "odd.png"
    Image.fromarray(np.full((37, 91, 3), 200, dtype=np.uint8)).save(odd)
    capsys.readouterr()
    assert main(["classify", "predict", "runs/classify/rgb", str(odd), "--topk", "2"]) == 0
    assert "resized" in capsys.readouterr().err
