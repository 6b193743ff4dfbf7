"""Property tests of the promise "nothing unchecked gets in" (hypothesis, a bounded number of examples each):

* every option of every ``dcv <task> train`` given a value outside what its field declares (below or above
  its bounds, not among its choices, not a number, a run name that is a path) ends in exit code 2 with one
  line naming the option, and no run directory;
* every field of a real checkpoint's meta (and of its model_kwargs, post-processing and proposals) set to a
  value no dcvkit run writes (the wrong type, out of range, not finite, a name that is not registered) ends
  ``dcv classify predict`` / ``dcv detect predict`` in exit code 2 with one line naming the file, never a
  traceback or a prediction.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, quick_args, run
from dcvkit.config import _base_type, field_meta
from dcvkit.tasks import TASKS

# 150 examples each in `make test`; DCV_PROPERTY_EXAMPLES=5000 for a longer hunt
EXAMPLES = settings(max_examples=int(os.environ.get("DCV_PROPERTY_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
TRAIN_TASKS = sorted(TASKS)


def declared_options(cls: type) -> list[tuple[str, type, dict]]:
    """(field, scalar type, metadata) of every option a value can be wrong for (all but the booleans)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        base, _ = _base_type(hints[f.name])
        if base is not bool:
            out.append((f.name, base, dict(field_meta(cls, f.name))))
    return out


def test_every_number_declares_its_range():
    """The property test below can only be as good as the declarations: every int/float option has bounds."""
    for task in TRAIN_TASKS:
        for name, base, meta in declared_options(TASKS[task].config):
            if base in (int, float):
                assert meta.get("bounds") or meta.get("check") or meta.get("choices"), (task, name)


def _outside(base: type, meta: dict) -> st.SearchStrategy[str]:
    """Text for the command line that the field's declaration refuses."""
    bounds, choices, check = meta.get("bounds"), meta.get("choices"), meta.get("check")
    bad: list[st.SearchStrategy[str]] = []
    if base in (int, float):
        bad.append(st.sampled_from(["abc", "1x", "nan", "inf", "-inf", ""]))
        if base is int:
            bad.append(st.floats(0.01, 0.99).map(lambda f: f"{f + 2:.3f}"))  # not whole
        if bounds is not None and bounds.lo is not None:
            below = st.floats(-1e12, bounds.lo, allow_nan=False).filter(lambda v: v not in bounds)
            bad.append(below.map(lambda v: str(math.floor(v)) if base is int else repr(v)))
        if bounds is not None and bounds.hi is not None:
            above = st.floats(bounds.hi, 1e30, allow_nan=False).filter(lambda v: v not in bounds)
            bad.append(above.map(lambda v: str(math.ceil(v) + (1 if v == math.ceil(v) else 0)) if base is int
                                 else repr(v)))
    if choices:
        bad.append(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(lambda t: t not in choices))
    if check is not None and base is str:
        bad.append(st.sampled_from(["../x", "/abs", "a/b", "..", ".hidden", ""]))
    return st.one_of(bad) if bad else st.nothing()


CASES = [(task, name, base, meta) for task in TRAIN_TASKS for name, base, meta in declared_options(TASKS[task].config)
         if _outside(base, meta) is not st.nothing() and (meta.get("bounds") or meta.get("choices") or meta.get("check")
                                                         or base in (int, float))]


@EXAMPLES
@given(data=st.data())
def test_train_options_outside_their_declaration(data, tmp_path, capsys):
    task, name, base, meta = data.draw(st.sampled_from(CASES), label="option")
    value = data.draw(_outside(base, meta), label="value")
    flag = meta.get("flag") or "--" + name.replace("_", "-")
    project = tmp_path / "p"
    code, _, err = run(capsys, task, "train", f"{flag}={value}", "--project", str(project))
    line = assert_one_line_error(code, err)
    assert flag in line or f"'{name}'" in line or name in line, line
    assert not project.exists()


# --- a real checkpoint's meta, mutated ------------------------------------------------------------------


@pytest.fixture(scope="module", params=["classify", "detect"])
def checkpoint(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """A real run (a cnn_tiny classifier on a tiny folder; a yolo on 40 FashionScenes, whose meta adds the
    letterbox size, the post-processing and the proposals) and an image to predict."""
    import numpy as np
    from PIL import Image

    from conftest import missing, write_png_folder
    from dcvkit.cli.main import main

    task = request.param
    root = tmp_path_factory.mktemp(f"ckpt-{task}")
    if task == "classify":
        data = write_png_folder(root / "imgs")
        args = ["--data", str(data), *quick_args("--epochs", "1", "--dropout", "0.1")]
    else:
        from dcvkit.data import named

        if named.find("fashion-mnist") is None:
            missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
        args = ["--model", "yolo", "--width", "0.5", "--scenes", "40", "--test-scenes", "0", "--epochs", "1",
                "--batch-size", "8", "--no-progress", "--no-tensorboard"]
    assert main([task, "train", *args, "--project", str(root / "runs")]) == 0
    image = root / "x.png"
    Image.fromarray(np.full((28, 28), 90, np.uint8)).save(image)
    return task, root / "runs" / task / "exp" / "best.pt", image


def _garbage_for(original):
    """Values of the wrong type or out of any range for a field that holds ``original``."""
    from dcvkit.models import list_models

    junk = st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                     st.lists(st.lists(st.integers(), max_size=2), min_size=1, max_size=3))
    if isinstance(original, bool):
        return st.one_of(junk, st.text(max_size=6))
    if isinstance(original, int):
        return st.one_of(junk, st.booleans(), st.integers(max_value=0), st.integers(min_value=10**7),
                         st.sampled_from([float("nan"), float("inf"), -1.5]),
                         st.text("abcxyz", min_size=1, max_size=6))
    if isinstance(original, float):
        return st.one_of(junk, st.booleans(), st.sampled_from([float("nan"), float("inf"), -1e9, 1e9, -0.5]),
                         st.text("abcxyz", min_size=1, max_size=6))
    if isinstance(original, str):
        names = set(list_models()) | {original}
        return st.one_of(junk, st.integers(max_value=-1),  # (a str option reads a number as its text)
                         st.text("abcdefghij", min_size=1, max_size=8).filter(lambda t: t not in names))
    if isinstance(original, list):  # classes, mean, std: wrong lengths, wrong items
        n = len(original)
        return st.one_of(st.none(), st.text(max_size=6), st.integers(max_value=0), st.just([]),
                         st.lists(st.text(max_size=3) if not isinstance(original[0], str) else st.integers(),
                                  min_size=1, max_size=n + 3),
                         st.lists(st.sampled_from([float("nan"), float("inf")]), min_size=n, max_size=n)
                         if not isinstance(original[0], str) else st.lists(st.text(max_size=3), min_size=n + 1,
                                                                           max_size=n + 3))
    return junk


def _fields(meta: dict) -> list[str]:
    nested = [f"{group}.{k}" for group in ("model_kwargs", "post", "proposals") for k in meta.get(group, {})]
    return [k for k in meta if k not in ("model_kwargs", "post", "proposals")] + nested


@EXAMPLES
@given(data=st.data())
def test_checkpoint_meta_outside_what_dcvkit_writes(data, checkpoint, tmp_path, capsys):
    task, best, image = checkpoint
    ckpt = torch.load(best, weights_only=True)
    key = data.draw(st.sampled_from(_fields(ckpt["meta"])), label="field")
    group, _, name = key.rpartition(".")
    holder = ckpt["meta"][group] if group else ckpt["meta"]
    value = data.draw(_garbage_for(holder[name]), label="value")
    holder[name] = value
    path = tmp_path / "mutated.pt"
    torch.save(ckpt, path)
    code, out, err = run(capsys, task, "predict", str(path), str(image), *(["--out", str(tmp_path / "o")]
                                                                          if task == "detect" else []))
    assert_one_line_error(code, err, str(path))
    assert not out.strip()
