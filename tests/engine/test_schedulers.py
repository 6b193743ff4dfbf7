"""Each learning-rate schedule follows its documented curve, with warm-up, and resumes exactly."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from dcvkit.config import TrainConfig
from dcvkit.engine.optim import LRSchedule

SPE, EPOCHS = 10, 4


def _make(name: str, **kw):
    p = nn.Parameter(torch.zeros(1))
    cfg = TrainConfig(scheduler=name, epochs=EPOCHS, lr=1.0, **kw)
    opt = torch.optim.SGD([p], lr=cfg.lr, momentum=0.9)
    return opt, LRSchedule(opt, cfg, SPE), cfg


def _run(opt, sched, cfg, epochs=range(EPOCHS), metrics=None, out=None):
    out = out if out is not None else [sched.lr]
    for e in epochs:
        for _ in range(SPE):
            opt.step()
            sched.step_batch()
            out.append(sched.lr)
        sched.step_epoch({cfg.monitor: (metrics or [0.5] * EPOCHS)[e]}, cfg.monitor)
    return out


def lrs(name, **kw):
    return _run(*_make(name, **kw))


def test_none_is_constant():
    assert set(lrs("none")) == {1.0}


def test_step_drops_by_gamma_every_step_size_epochs():
    lr = lrs("step", step_size=2, gamma=0.1)
    assert lr[19] == 1.0 and lr[20] == pytest.approx(0.1) and lr[40] == pytest.approx(0.01)


def test_exponential_multiplies_by_gamma_per_epoch():
    lr = lrs("exponential", gamma=0.5)
    assert lr[10] == pytest.approx(0.5) and lr[20] == pytest.approx(0.25) and lr[40] == pytest.approx(1 / 16)


def test_cosine_goes_from_lr_to_zero():
    lr = lrs("cosine")
    assert lr[0] == 1.0 and lr[20] == pytest.approx(0.5) and lr[40] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(lr, lr[1:]))


def test_onecycle_rises_then_anneals():
    lr = lrs("onecycle")
    peak = max(range(len(lr)), key=lr.__getitem__)
    assert lr[0] == pytest.approx(1 / 25) and lr[peak] == pytest.approx(1.0, rel=1e-2) and abs(peak - 0.3 * 40) <= 1
    assert lr[-1] == pytest.approx(1 / 25 / 1e4)  # ends at initial_lr / final_div_factor


def test_plateau_lowers_lr_when_the_metric_stalls():
    lr = _run(*_make("plateau", plateau_patience=1, gamma=0.5), metrics=[0.5, 0.5, 0.5, 0.5])
    assert lr[30] == 1.0 and lr[31] == 0.5  # lowered at the end of epoch 3: 2 bad epochs > patience 1


@pytest.mark.parametrize("name", ["cosine", "step", "plateau", "none"])
def test_linear_warmup(name):
    lr = lrs(name, warmup_epochs=1)
    assert lr[0] == pytest.approx(0.1) and lr[5] == pytest.approx(0.55) and lr[10] == pytest.approx(1.0)
    if name == "cosine":
        assert lr[40] == pytest.approx(0.0, abs=1e-9) and lr[25] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["none", "step", "exponential", "cosine", "onecycle", "plateau"])
def test_resume_continues_the_same_curve(name):
    kw = {"warmup_epochs": 0.5} if name != "onecycle" else {}
    metrics = [0.5, 0.4, 0.4, 0.4]
    full = _run(*_make(name, **kw), metrics=metrics)
    opt, sched, cfg = _make(name, **kw)
    head = _run(opt, sched, cfg, range(2), metrics)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # schedules must be checkpoint-safe
    opt2, sched2, _ = _make(name, **kw)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    resumed = _run(opt2, sched2, cfg, range(2, EPOCHS), metrics, out=head)
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) for a, b in zip(full, resumed))
