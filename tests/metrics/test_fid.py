"""Inception FID: skipped with the reason when torch-fidelity or its weights are missing, and unsafe weight
files refused (read with ``weights_only=True``)."""

from __future__ import annotations

import pytest
import torch


def test_inception_fid_is_skipped_without_local_weights_and_refuses_unsafe_ones(tmp_path, monkeypatch, capsys):
    from dcvkit.errors import CheckpointError
    from dcvkit.metrics.fid import _safe_inception, inception_fid

    imgs = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache: nothing is downloaded
    value, note = inception_fid(imgs, imgs, torch.device("cpu"))
    assert value is None and note.startswith("skipped: ")  # torch-fidelity missing, or no weights

    class Boom:
        def __reduce__(self):
            return (print, ("PWNED",))

    bad = tmp_path / "weights.pth"
    torch.save({"fc.weight": Boom()}, bad)

    class FidelityLike:  # what torch-fidelity's extractor does with a weights path
        def __init__(self, feature, feature_extractor_weights_path):
            self.state = torch.load(feature_extractor_weights_path, weights_only=False)

    with pytest.raises(CheckpointError, match="not usable as the FID Inception weights"):
        _safe_inception(FidelityLike, bad)
    assert "PWNED" not in capsys.readouterr().out
    good = tmp_path / "good.pth"
    torch.save({"fc.weight": torch.ones(2)}, good)
    assert torch.equal(_safe_inception(FidelityLike, good).state["fc.weight"], torch.ones(2))

