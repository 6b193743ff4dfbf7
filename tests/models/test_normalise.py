"""One normaliser: for the same image, training, ``predict``, the exported ONNX graph (run by onnxruntime)
and the explanations hand the network the same tensor, with the data's mean/std and with an augmentation
that standardises (featurewise statistics, samplewise centring)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from dcvkit.models.normalise import Normaliser, probe_affine


class Inputs:
    """Every tensor that reaches a model of class ``cls`` while the block runs (a global forward pre-hook:
    it sees the models the package builds inside its functions too)."""

    def __init__(self, cls: type):
        self.cls, self.seen = cls, []

    def __enter__(self) -> "Inputs":
        def hook(module, args):
            if type(module) is self.cls:
                self.seen.append(args[0].detach().float().clone())

        self.handle = nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


class Probe(nn.Module):
    """A stand-in network for the exported graph: returns its input, so onnxruntime shows what the model gets."""

    export_inputs = ("images",)

    def forward_export(self, x: Tensor) -> Tensor:
        return x


@pytest.mark.parametrize("augment", [None, "featurewise_center=true, featurewise_std_normalization=true",
                                     "samplewise_center=true"])
def test_every_path_gives_the_model_the_same_input(idx_dir, tmp_path, augment):
    from dcvkit.explain.model import load_explainable
    from dcvkit.export import ExportGraph, export, run_onnx, write_onnx
    from dcvkit.io import load_checkpoint
    from dcvkit.models.classify.cnn import PrototypicalCNN
    from dcvkit.tasks import classify

    cfg = classify.ClassifyConfig(data="fashion-mnist", data_dir=str(idx_dir), model="cnn_tiny", epochs=1, limit=200,
                                  augment=augment, progress=False, tensorboard=False, test=False)
    result = classify.train(cfg)
    image = result.splits.val.images[:1]  # uint8 (1, 1, 28, 28)
    png = tmp_path / "x.png"
    Image.fromarray(image[0, 0].numpy()).save(png)
    ckpt = load_checkpoint(result.run_dir / "best.pt")
    # training: the task train() builds, resumed from the run (its fitted statistics), one training step
    _, task = classify.build_task(result.config, result.splits, ckpt=ckpt)
    with Inputs(PrototypicalCNN) as seen:
        task.training_step((image, torch.zeros(1, dtype=torch.long)))
        classify.predict(result.run_dir, [png])
        load_explainable(result.run_dir, "cpu").probs(image.float() / 255)
    train_in, predict_in, explain_in = seen.seen
    # export: the graph dcv export writes, with the network replaced by a probe, run by onnxruntime
    normaliser = Normaliser.from_meta(ckpt["meta"])
    write_onnx(ExportGraph(Probe(), normaliser).eval(), (image.float(),), tmp_path / "probe.onnx", ("images",),
               ("x",))
    (onnx_in,) = run_onnx(tmp_path / "probe.onnx", {"images": image.float()})
    assert (normaliser.standardizer is not None) == (augment is not None)
    assert train_in.abs().sum() > 0
    for name, got in (("predict", predict_in), ("explain", explain_in), ("export", onnx_in)):
        assert torch.allclose(got, train_in, atol=1e-5), (name, float((got - train_in).abs().max()))
    # and the real export agrees with PyTorch (the same normaliser inside the ONNX graph)
    assert export(result.run_dir, out=tmp_path / "cnn.onnx", check=8)["ok"]


def test_normaliser_matches_the_mean_std_formula_and_its_checkpoint_meta():
    x = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    n = Normaliser([0.2, 0.5, 0.7], [0.1, 0.3, 0.25])
    mean = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1)
    std = torch.tensor([0.1, 0.3, 0.25]).view(1, 3, 1, 1)
    assert torch.allclose(n(x), (x.float() / 255 - mean) / std, atol=1e-5)
    assert torch.allclose(n.unit(x.float() / 255), n(x), atol=1e-5)
    again = Normaliser.from_meta({"mean": n.stats[0], "std": n.stats[1]})
    assert torch.equal(again(x), n(x))
    scale, shift = n.per_channel()
    assert torch.allclose(n(x), x.float() * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1), atol=1e-4)


def test_probe_affine_tells_per_channel_maps_from_per_image_ones():
    assert probe_affine(lambda x: 2 * x + 1, 3) is not None
    assert probe_affine(lambda x: x - x.mean((1, 2, 3), keepdim=True), 3) is None  # samplewise: per image
