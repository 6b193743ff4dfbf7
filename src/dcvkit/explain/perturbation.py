"""Perturbation saliency exactly as the course describes it, made fast.

The course's algorithm: for each pixel value in turn (R, G, B, then the next pixel), make a copy of the
image, make the value larger or smaller by various amounts, find the CNN's prediction each time and
``D = (p(changed) - p(original)) / (changed value - original value)`` for the explained class; the pixel
value's saliency is the mean of its D. Values pushed past [0, 1] are clipped and count with the step
they really took; a step that clipping makes 0 does not count. Done literally
(:func:`dcvkit.explain.reference.naive_perturbation_saliency`) that is one forward pass per pixel value
per step: 150,528 x k passes for a 224x224 RGB image.

Two exact ways to do the same passes faster:

* **batched**: many perturbed copies per forward pass, chunked to a memory budget, under
  ``torch.inference_mode``; works for any model.
* **incremental** (Krypton's idea: Nakandala et al., "Incremental and Approximate Inference for Faster
  Occlusion-based Deep CNN Explanations", SIGMOD 2019): a changed pixel only changes a small window of
  each convolutional layer (its receptive field's image). When the model's features are a plain chain
  of convolutions, pooling and element-wise layers (``Classifier.feature_chain()``) and its input
  normalisation is per channel, each copy recomputes only those windows, pasted over the unperturbed
  image's activations, and runs the head on the patched feature map. The same numbers (up to float
  rounding) for a fraction of the work: decisive at 224x224, where one pixel reaches a few percent of
  each layer.

torchvision and captum have nothing for this (captum's ``FeatureAblation`` replaces values by a baseline,
one full forward pass per feature), so it is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.errors import ConfigError
from dcvkit.explain.model import Explainable, class_score

DEFAULT_DELTAS = (1.0, 2.0, 4.0)  # in 1/255 steps, each used with both signs
DEFAULT_MAX_MEMORY_MB = 512
MAX_BATCH = 8192
TABLE_BYTES = 256 * 2**20  # a layer's table of all its input windows is kept when it is at most this big

# --- the perturbations -----------------------------------------------------------------------------------


@dataclass
class Perturbations:
    """Every (pixel value, step) pair with a non-zero real step, for one image of C*H*W values.

    ``index`` (N,) flat index into (C, H, W); ``value`` (N,) the changed value; ``step`` (N,) its real
    change (after clipping to [0, 1])."""

    index: Tensor
    value: Tensor
    step: Tensor

    def __len__(self) -> int:
        return len(self.index)


def signed_deltas(deltas: Sequence[float]) -> list[float]:
    """Steps in 1/255 units -> both signs, in pixel units: (1, 2) -> [-2/255, -1/255, 1/255, 2/255]."""
    if not deltas or any(d <= 0 for d in deltas):
        raise ConfigError(f"--deltas {','.join(f'{d:g}' for d in deltas)}: give positive step sizes in 1/255 units, "
                          "e.g. 1,2,4 (each is used with both signs)")
    mags = sorted({float(d) / 255.0 for d in deltas})
    return [-d for d in reversed(mags)] + mags


def perturbations(x: Tensor, deltas: Sequence[float]) -> Perturbations:
    """The course's perturbed values of image ``x`` (C, H, W) in [0, 1], for signed ``deltas`` (pixel units)."""
    flat = x.flatten()
    d = torch.tensor(list(deltas), dtype=x.dtype, device=x.device)
    new = (flat[:, None] + d[None, :]).clamp(0, 1)
    step = new - flat[:, None]
    keep = step != 0
    index = torch.arange(len(flat), device=x.device)[:, None].expand_as(new)[keep]
    return Perturbations(index, new[keep], step[keep])


def average(p: Perturbations, d: Tensor, numel: int) -> Tensor:
    """Mean D per pixel value (numel,); 0 where no step counted."""
    total = torch.zeros(numel, dtype=d.dtype, device=d.device).index_add_(0, p.index, d)
    count = torch.zeros(numel, dtype=d.dtype, device=d.device).index_add_(0, p.index, torch.ones_like(d))
    return total / count.clamp_min(1)


# --- batched: whole perturbed copies ------------------------------------------------------------------


def activation_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes of every leaf module's output for one input (an upper bound of inference memory per image)."""
    total = [x.numel()]
    hooks = [m.register_forward_hook(lambda _m, _i, o: total.append(o.numel() if isinstance(o, Tensor) else 0))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return sum(total) * x.element_size()


class BatchedForward:
    """The score of class ``target`` (:meth:`Explainable.score`) for perturbed copies of ``x``, many whole
    copies per forward pass."""

    def __init__(self, ex: Explainable, x: Tensor, target: int, score: str = "logprob"):
        self.ex, self.x, self.target, self.score = ex, x, target, score
        self.bytes_per_copy = activation_bytes(ex.model, ex.normalise(x[None])) + x.numel() * x.element_size()

    def __call__(self, index: Tensor, value: Tensor) -> Tensor:
        b = len(index)
        xs = self.x.expand(b, *self.x.shape).clone()
        xs.view(b, -1)[torch.arange(b, device=xs.device), index] = value
        return self.ex.score(xs, self.target, self.score)


# --- incremental: only the windows a changed pixel reaches ---------------------------------------------

_POINTWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
              nn.Identity, nn.Dropout, nn.Dropout2d)


@dataclass
class _Window:
    """A layer that mixes neighbours (convolution, pooling), as seen by one changed window of its input."""

    k: tuple[int, int]
    s: tuple[int, int]
    p: tuple[int, int]
    d: tuple[int, int]
    fill: float                       # padding value: 0 (conv, avg pool) or -inf (max pool)
    op: Callable[[Tensor], Tensor]    # the layer on an already padded window, padding 0
    padded: Tensor                    # the unperturbed input of this layer, padded: (C, H + 2p, W + 2p)
    out_hw: tuple[int, int]           # the layer's full output size
    size: tuple[int, int] = (1, 1)    # output window size (set by the planner)
    table: Tensor | None = None       # every input window of the unperturbed map, (positions, hin, win, C)

    def windows(self, oy: Tensor, ox: Tensor) -> Tensor:
        """The unperturbed input windows (B, C, hin, win) under output windows starting at (oy, ox)."""
        (kh, kw), (sh, sw), (dh, dw) = self.k, self.s, self.d
        h, w = self.size
        hin, win = (h - 1) * sh + dh * (kh - 1) + 1, (w - 1) * sw + dw * (kw - 1) + 1
        if self.table is not None:  # one contiguous row per copy: much faster than 2-D fancy indexing;
            # channels-last rows, which the CPU's convolution and pooling kernels run fastest on small maps
            return self.table.index_select(0, oy * (self.out_hw[1] - w + 1) + ox).permute(0, 3, 1, 2)
        rows = oy[:, None] * sh + torch.arange(hin, device=oy.device)
        cols = ox[:, None] * sw + torch.arange(win, device=ox.device)
        return self.padded[:, rows[:, :, None], cols[:, None, :]].permute(1, 0, 2, 3)


def _t2(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window_layer(m: nn.Module) -> tuple[tuple, float, Callable[[Tensor], Tensor]] | None:
    """(k, s, p, d), padding value and the padding-free op of a conv/pool layer; None if unsupported."""
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            return None
        geo = (_t2(m.kernel_size), _t2(m.stride), _t2(m.padding), _t2(m.dilation))
        return geo, 0.0, lambda w, m=m: F.conv2d(w, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
    if isinstance(m, nn.MaxPool2d):
        if m.ceil_mode or m.return_indices:
            return None
        k = _t2(m.kernel_size)
        geo = (k, _t2(m.stride or k), _t2(m.padding), _t2(m.dilation))
        return geo, -math.inf, lambda w, m=m: F.max_pool2d(w, m.kernel_size, m.stride, 0, m.dilation)
    if isinstance(m, nn.AvgPool2d):
        k = _t2(m.kernel_size)
        if m.ceil_mode or m.divisor_override is not None or (not m.count_include_pad and any(_t2(m.padding))):
            return None
        geo = (k, _t2(m.stride or k), _t2(m.padding), (1, 1))
        return geo, 0.0, lambda w, m=m: F.avg_pool2d(w, m.kernel_size, m.stride, 0)
    return None


class IncrementalForward:
    """p(target) of single-value perturbations of ``x``, recomputing only the changed windows.

    Built by :meth:`build`, which returns None when the model does not qualify (no plain feature chain,
    a layer it does not know, or an input normalisation that is not per channel)."""

    def __init__(self, ex: Explainable, x: Tensor, target: int, steps: list[nn.Module | _Window],
                 base_features: Tensor, bytes_per_copy: int, score: str = "logprob"):
        self.ex, self.x, self.target, self.score = ex, x, target, score
        self.steps, self.base_features, self.bytes_per_copy = steps, base_features, bytes_per_copy
        self.scale, self.shift = ex.affine  # type: ignore[misc]

    @classmethod
    def build(cls, ex: Explainable, x: Tensor, target: int, score: str = "logprob") -> "IncrementalForward | None":
        chain = ex.model.feature_chain() if hasattr(ex.model, "feature_chain") else None
        if chain is None or ex.affine is None or ex.model.training:
            return None
        steps: list[nn.Module | _Window] = []
        with torch.inference_mode():
            a = ex.normalise(x[None])[0]
            h = w = 1
            size_bytes = 0
            for m in chain:
                if isinstance(m, _POINTWISE):
                    steps.append(m)
                    a = m(a[None].clone())[0]
                    size_bytes += a.shape[0] * h * w
                    continue
                spec = _window_layer(m)
                if spec is None:
                    return None
                (k, s, p, d), fill, op = spec
                padded = F.pad(a, (p[1], p[1], p[0], p[0]), value=fill) if any(p) else a
                a = m(a[None])[0]
                out_hw = (a.shape[1], a.shape[2])
                h = min((h - 1 + d[0] * (k[0] - 1)) // s[0] + 1, out_hw[0])
                w = min((w - 1 + d[1] * (k[1] - 1)) // s[1] + 1, out_hw[1])
                hin, win = (h - 1) * s[0] + d[0] * (k[0] - 1) + 1, (w - 1) * s[1] + d[1] * (k[1] - 1) + 1
                st = _Window(k, s, p, d, fill, op, padded, out_hw, (h, w))
                positions = (out_hw[0] - h + 1) * (out_hw[1] - w + 1)
                if positions * padded.shape[0] * hin * win * padded.element_size() <= TABLE_BYTES:
                    cols = F.unfold(padded[None], (hin, win), stride=s)[0]          # (C*hin*win, positions)
                    st.table = cols.view(-1, hin, win, positions).permute(3, 1, 2, 0).contiguous()
                steps.append(st)
                size_bytes += 2 * padded.shape[0] * hin * win + a.shape[0] * h * w
        head_bytes = activation_bytes(_Head(ex.model), a[None]) // a.element_size()
        bytes_per_copy = (size_bytes + 2 * a.numel() + head_bytes) * a.element_size()
        return cls(ex, x, target, steps, a, bytes_per_copy, score)

    def __call__(self, index: Tensor, value: Tensor) -> Tensor:
        c_all, h_all, w_all = self.x.shape
        b = len(index)
        ch, pos = index // (h_all * w_all), index % (h_all * w_all)
        y0, x0 = pos // w_all, pos % w_all
        pix = self.x[:, y0, x0].T.clone()                             # (B, C) the changed pixel, all channels
        pix[torch.arange(b, device=pix.device), ch] = value
        patch = (pix * self.scale + self.shift)[:, :, None, None]     # (B, C, 1, 1) normalised
        for step in self.steps:
            if not isinstance(step, _Window):
                patch = step(patch)
                continue
            patch, y0, x0 = self._window(step, patch, y0, x0)
        full = self.base_features.expand(b, *self.base_features.shape).clone(memory_format=torch.channels_last)
        _paste(full, patch, y0, x0)
        return class_score(self.ex.model.forward_head(full), self.target, self.score)

    @staticmethod
    def _window(st: _Window, patch: Tensor, y0: Tensor, x0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = st.k, st.s, st.p, st.d
        h, w = st.size
        # first output row whose receptive field reaches the changed rows (ceil division), kept inside the map
        oy = (-((-(y0 + ph - dh * (kh - 1))) // sh)).clamp(0, st.out_hw[0] - h)
        ox = (-((-(x0 + pw - dw * (kw - 1))) // sw)).clamp(0, st.out_hw[1] - w)
        window = st.windows(oy, ox)
        # paste the changed patch over the unperturbed values: its offset in the window takes only a few
        # values (alignment, borders), so one slice copy per distinct offset; parts outside are unused
        dy, dx = y0 + ph - oy * sh, x0 + pw - ox * sw
        hin, win = window.shape[-2:]
        p_h, p_w = patch.shape[-2:]
        span = 2 * (p_w + win) + 1
        key = (dy + p_h + hin) * span + (dx + p_w + win)
        for k in torch.unique(key).tolist():
            sel = (key == k).nonzero().flatten()
            oy_, ox_ = k // span - p_h - hin, k % span - p_w - win
            r0, r1, c0, c1 = max(oy_, 0), min(oy_ + p_h, hin), max(ox_, 0), min(ox_ + p_w, win)
            if r0 < r1 and c0 < c1:
                window[sel, :, r0:r1, c0:c1] = patch[sel, :, r0 - oy_:r1 - oy_, c0 - ox_:c1 - ox_]
        return st.op(window), oy, ox


class _Head(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, f: Tensor) -> Tensor:
        return self.model.forward_head(f)


def _paste(full: Tensor, patch: Tensor, y0: Tensor, x0: Tensor) -> None:
    """Write each copy's window ``patch`` (B, C, h, w) into ``full`` (B, C, H, W) at rows y0.., cols x0.."""
    b, _, h, w = patch.shape
    rows = y0[:, None] + torch.arange(h, device=y0.device)
    cols = x0[:, None] + torch.arange(w, device=x0.device)
    bi = torch.arange(b, device=patch.device)[:, None, None]
    full[bi, :, rows[:, :, None], cols[:, None, :]] = patch.permute(0, 2, 3, 1)


# --- the method -------------------------------------------------------------------------------------------


@dataclass
class PerturbationResult:
    saliency: Tensor       # (C, H, W) mean D per pixel value
    forward_passes: int    # perturbed copies evaluated
    batches: int
    engine: str            # "incremental" or "batched"


def perturbation_saliency(ex: Explainable, x: Tensor, target: int, deltas: Sequence[float] = DEFAULT_DELTAS,
                          batch_size: int | None = None, max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
                          engine: str = "auto", progress: Callable[[int, int], None] | None = None,
                          values: int | None = None, score: str = "logprob") -> PerturbationResult:
    """The course's perturbation saliency of class ``target`` for image ``x`` (C, H, W) in [0, 1]: the mean
    of ``Δscore / Δpixel`` over the steps, ``score`` = ``logprob`` (log p(target), default: a prediction
    at p = 1.000 in float32 still has a map), ``logit`` or ``prob`` (the course's Δprobability, which is 0
    everywhere once the softmax saturates). Scores are compared in float64.

    ``deltas`` are step sizes in 1/255 units, each used with both signs. ``engine``: ``auto``
    (incremental when the model allows it, else batched), ``incremental`` or ``batched``. Copies are
    evaluated ``batch_size`` at a time, by default as many as fit ``max_memory_mb``. ``values`` restricts
    the work to the first that many pixel values (the rest stay 0), to time a part of a large image.
    """
    if engine not in ("auto", "batched", "incremental"):
        raise ConfigError(f"unknown engine '{engine}'; choose auto, incremental or batched")
    x = x.to(device=ex.device, dtype=ex.dtype)
    p = perturbations(x, signed_deltas(deltas))
    if values is not None:
        keep = p.index < values
        p = Perturbations(p.index[keep], p.value[keep], p.step[keep])
    with torch.inference_mode():
        p0 = ex.score(x[None], target, score)[0]
        fwd: IncrementalForward | BatchedForward | None = None
        if engine in ("auto", "incremental"):
            fwd = IncrementalForward.build(ex, x, target, score)
            if fwd is None and engine == "incremental":
                raise ConfigError("engine incremental: this model's features are not a plain chain of "
                                  "convolution/pooling/element-wise layers (or its normalisation is not per "
                                  "channel); use engine batched")
        if fwd is None:
            fwd = BatchedForward(ex, x, target, score)
        bs = batch_size or max(1, min(MAX_BATCH, int(max_memory_mb * 2**20) // max(1, fwd.bytes_per_copy)))
        d = torch.empty(len(p), dtype=torch.float64, device=x.device)
        batches = 0
        for i in range(0, len(p), bs):
            j = slice(i, i + bs)
            d[j] = (fwd(p.index[j], p.value[j]) - p0) / p.step[j].double()
            batches += 1
            if progress is not None:
                progress(min(i + bs, len(p)), len(p))
    engine_name = "incremental" if isinstance(fwd, IncrementalForward) else "batched"
    return PerturbationResult(average(p, d, x.numel()).view_as(x), len(p), batches, engine_name)
