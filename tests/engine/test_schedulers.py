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


# --- fitted to --max-time (issue 29) ------------------------------------------------------------------------


def _fitted(name: str, epochs: int = EPOCHS, **kw):
    p = nn.Parameter(torch.zeros(1))
    cfg = TrainConfig(scheduler=name, epochs=epochs, lr=1.0, max_time=1.0, **kw)
    opt = torch.optim.SGD([p], lr=cfg.lr, momentum=0.9)
    return opt, LRSchedule(opt, cfg, SPE, fitted=True)


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_a_fitted_schedule_told_no_time_is_the_schedule_by_steps(name):
    """When the steps run out first, fitting changes nothing: the same lr at every step."""
    plain = lrs(name, warmup_epochs=1)
    opt, sched = _fitted(name, warmup_epochs=1)
    fitted = [sched.lr]
    for _ in range(SPE * EPOCHS):
        opt.step()
        sched.step_batch(0.0)
        fitted.append(sched.lr)
    assert fitted == pytest.approx(plain, abs=1e-12) and sched.finished


@pytest.mark.parametrize("name, final", [("onecycle", 1.0 / 25 / 1e4), ("cosine", 0.0)])
def test_a_fitted_schedule_ends_at_its_final_value_when_the_time_is_up(name, final):
    """100 epochs planned, time for a few: the lr follows the time and is at its last value when it ends."""
    opt, sched = _fitted(name, epochs=100, warmup_epochs=1)
    seen, used = [], 0.0
    for step in range(1, 1000):
        opt.step()
        used = step / 137  # the time for 137 steps: far fewer than 100 epochs' 1,000
        sched.step_batch(used)
        seen.append(sched.lr)
        if sched.finished:
            break
    assert step == 137 and sched.lr == pytest.approx(final, abs=1e-12)
    assert seen[:SPE] == pytest.approx([0.1 + 0.9 * (k + 1) / SPE for k in range(SPE)]) or name == "onecycle"
    assert seen[SPE - 1] == pytest.approx(1.0, rel=1e-4)  # the warm-up's 10 steps go step by step, to the peak
    if name == "cosine":
        assert all(a >= b for a, b in zip(seen[SPE:], seen[SPE + 1:]))  # then anneals over the time left
        assert seen[SPE + (137 - SPE) // 2] == pytest.approx(0.5, abs=0.02)  # halfway through the time: half


def test_a_fitted_schedule_resumed_goes_on_from_where_it_was():
    opt, sched = _fitted("cosine", epochs=100)
    for step in range(1, 51):
        opt.step()
        sched.step_batch(step / 100)  # half the time used, in 50 steps
    state, lr = sched.state_dict(), sched.lr
    assert state["fitted"] and state["progress"] == pytest.approx(0.5, abs=1e-3) and lr == pytest.approx(0.5, abs=0.01)
    opt2, again = _fitted("cosine", epochs=100)
    opt2.load_state_dict(opt.state_dict())  # (the trainer restores both)
    again.load_state_dict(state)
    assert again.lr == pytest.approx(lr)
    for step in range(1, 21):  # a new --max-time: the other half of the schedule over its whole time
        opt2.step()
        again.step_batch(step / 20)
    assert again.finished and again.lr == pytest.approx(0.0, abs=1e-12)
