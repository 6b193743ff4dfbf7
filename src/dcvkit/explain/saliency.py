"""Saliency maps: which pixels the prediction of one class depends on.

    from dcvkit.explain import load_explainable, saliency
    ex = load_explainable("runs/classify/exp")
    s = saliency(ex, image, method="perturbation")     # image (C, H, W) in [0, 1]
    s.attributions   # (C, H, W) signed, d score / d pixel (score: log p(target) by default)
    s.pixel          # (H, W) one value per pixel: mean |.| over channels (or max, aggregate="max")

Methods (of a score of the class, pixels in [0, 1]). The score is ``logprob`` = log p(target) by default:
a confident prediction (p = 1.000 in float32) has a softmax so saturated that d p / d pixel is 0 or ~1e-9
noise, while log p still moves (computed from the logits in float64). ``score="prob"`` is the course's
Δprobability, ``score="logit"`` the raw class logit (Simonyan et al. 2013). A map that is all zero or below
numerical noise says so (a warning, and ``info["degenerate"]``), never a flat overlay that looks fine.

* ``perturbation``: the course's algorithm, exact and fast (:mod:`dcvkit.explain.perturbation`).
* ``gradient``: d score / d pixel by autograd, the analytic limit of the perturbation method as the steps
  shrink.
* ``smoothgrad``: the gradient averaged over noisy copies of the image (Smilkov et al. 2017).
* ``occlusion``: the drop in p when a sliding patch is greyed out, averaged over the patches covering
  each pixel (Zeiler & Fergus 2014): coarse, but one forward pass per patch position.
* ``gradcam``: the last convolutional layer's channels weighted by their mean gradient of the class
  logit, ReLU, upsampled to the image (Selvaraju et al. 2017).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dcvkit.choices import SALIENCY_METHODS, SALIENCY_SCORES
from dcvkit.errors import ConfigError
from dcvkit.explain.model import Explainable
from dcvkit.explain.perturbation import DEFAULT_DELTAS, DEFAULT_MAX_MEMORY_MB, perturbation_saliency

METHODS = SALIENCY_METHODS
AGGREGATES = ("mean", "max")


@dataclass
class SaliencyMap:
    """One saliency map of one image.

    Shape:
        attributions: (C, H, W) signed (gradcam: (1, H, W), >= 0); pixel: (H, W) >= 0.
    """

    method: str
    target: int
    class_name: str
    probability: float
    attributions: Tensor
    pixel: Tensor
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def aggregate(attr: Tensor, how: str = "mean") -> Tensor:
    """(C, H, W) -> (H, W): mean or max of |attributions| over channels."""
    if how not in AGGREGATES:
        raise ConfigError(f"unknown aggregate '{how}'; choose {' or '.join(AGGREGATES)}")
    a = attr.abs()
    return a.mean(0) if how == "mean" else a.amax(0)


def gradient(ex: Explainable, x: Tensor, target: int, score: str = "logprob") -> Tensor:
    """d score(target) / d x for one image (C, H, W) or a batch (B, C, H, W) (summed over the batch)."""
    x = x.detach().clone().requires_grad_(True)
    batch = x if x.ndim == 4 else x.unsqueeze(0)
    (grad,) = torch.autograd.grad(ex.score(batch, target, score).sum(), x)
    return grad


def smoothgrad(ex: Explainable, x: Tensor, target: int, samples: int = 25, noise: float = 0.15,
               batch_size: int = 64, seed: int = 0, score: str = "logprob") -> Tensor:
    """Mean gradient over ``samples`` copies with Gaussian noise of std ``noise`` (pixel units, x in [0, 1])."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(x)
    for i in range(0, samples, batch_size):
        n = min(batch_size, samples - i)
        eps = torch.randn((n, *x.shape), generator=g).to(device=x.device, dtype=x.dtype) * noise
        total += gradient(ex, x.unsqueeze(0) + eps, target, score).sum(0)
    return total / samples


def occlusion(ex: Explainable, x: Tensor, target: int, patch: int = 4, stride: int = 2, fill: float | None = None,
              batch_size: int = 256, score: str = "logprob") -> tuple[Tensor, int]:
    """score(original) - score(patch greyed out), averaged over the patch positions covering each pixel -> (C, H, W)
    (all channels of a pixel share the value); ``fill`` defaults to the image's mean. Also the number of
    forward passes."""
    c, h, w = x.shape
    if patch < 1 or stride < 1:
        raise ConfigError("--patch and --stride must be at least 1")
    fill_value = float(x.mean()) if fill is None else fill
    ys = list(range(0, max(h - patch, 0) + 1, stride))
    xs = list(range(0, max(w - patch, 0) + 1, stride))
    if ys[-1] + patch < h:
        ys.append(h - patch)
    if xs[-1] + patch < w:
        xs.append(w - patch)
    corners = torch.tensor([(y, q) for y in ys for q in xs], device=x.device)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    total = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    count = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    with torch.inference_mode():
        p0 = ex.score(x[None], target, score)[0]
        for i in range(0, len(corners), batch_size):
            cb = corners[i:i + batch_size]
            inside = (((rows[None, :] >= cb[:, :1]) & (rows[None, :] < cb[:, :1] + patch))[:, :, None]
                      & ((cols[None, :] >= cb[:, 1:]) & (cols[None, :] < cb[:, 1:] + patch))[:, None, :])
            copies = torch.where(inside[:, None], torch.tensor(fill_value, dtype=x.dtype, device=x.device), x[None])
            drop = (p0 - ex.score(copies, target, score)).to(x.dtype)
            total += (inside * drop[:, None, None]).sum(0)
            count += inside.sum(0)
    return (total / count.clamp_min(1)).expand(c, h, w).clone(), len(corners)


def last_conv(model: nn.Module) -> str:
    """Grad-CAM's default layer: the model's deepest feature map (its last ``feature_layers`` entry: the last
    convolutional block, rectified and pooled), else its last ``nn.Conv2d``."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ConfigError("gradcam needs a convolutional layer; this model has none (use gradient or perturbation)")
    layers = getattr(model, "feature_layers", None)
    return layers[-1] if layers else names[-1]


def gradcam(ex: Explainable, x: Tensor, target: int, layer: str | None = None) -> tuple[Tensor, str]:
    """Grad-CAM (1, H, W) >= 0 of the class logit at ``layer`` (default: the last convolution)."""
    model = ex.model
    layer = layer or last_conv(model)
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ConfigError(f"--layer {layer}: no such layer; conv layers: "
                          + ", ".join(n for n, m in modules.items() if isinstance(m, nn.Conv2d)))
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: Tensor) -> None:
        store["a"] = out

    handle = modules[layer].register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = ex.logits(x.unsqueeze(0).detach().requires_grad_(True))
            act = store["a"]
            (grad,) = torch.autograd.grad(logits[0, target], act)
    finally:
        handle.remove()
    if act.ndim != 4:
        raise ConfigError(f"--layer {layer}: its output is not a feature map (B, C, h, w); pick a conv layer")
    weights = grad[0].mean((1, 2))                                    # (K,) mean gradient per channel
    cam = F.relu((weights[:, None, None] * act[0].detach()).sum(0))    # (h, w)
    cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0]
    return cam, layer


def saliency(ex: Explainable, image: Tensor, target: int | str | None = None, method: str = "perturbation", *,
             deltas: Sequence[float] = DEFAULT_DELTAS, batch_size: int | None = None,
             max_memory_mb: float = DEFAULT_MAX_MEMORY_MB, engine: str = "auto", samples: int = 25,
             noise: float = 0.15, patch: int = 4, stride: int = 2, layer: str | None = None,
             aggregate_by: str = "mean", seed: int = 0, score: str = "logprob",
             progress: Callable[[int, int], None] | None = None) -> SaliencyMap:
    """The saliency map of class ``target`` (index or name; default: the predicted class) for ``image``
    (C, H, W) float pixels in [0, 1] (uint8 images are divided by 255). See the module docstring."""
    if method not in METHODS:
        raise ConfigError(f"unknown saliency method '{method}'; choose one of {', '.join(METHODS)}")
    if score not in SALIENCY_SCORES:
        raise ConfigError(f"unknown saliency score '{score}'; choose one of {', '.join(SALIENCY_SCORES)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    if tuple(image.shape) != (ex.in_chans, *ex.img_size):
        raise ConfigError(f"image is {tuple(image.shape)} but the model takes {(ex.in_chans, *ex.img_size)}; "
                          "read files with dcvkit.explain.read_images, which converts and resizes")
    ex.model.eval()
    x = image.to(device=ex.device, dtype=ex.dtype)
    k, prob = ex.target(x, target)
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if method == "perturbation":
        r = perturbation_saliency(ex, x, k, deltas, batch_size, max_memory_mb, engine, progress, score=score)
        attr = r.saliency
        info = {"forward_passes": r.forward_passes, "batches": r.batches, "engine": r.engine,
                "deltas": [float(d) for d in deltas]}
    elif method == "gradient":
        attr = gradient(ex, x, k, score)
    elif method == "smoothgrad":
        attr = smoothgrad(ex, x, k, samples, noise, seed=seed, score=score)
        info = {"samples": samples, "noise": noise}
    elif method == "occlusion":
        attr, n = occlusion(ex, x, k, patch, stride, score=score)
        info = {"patch": patch, "stride": stride, "forward_passes": n}
    else:
        attr, used = gradcam(ex, x, k, layer)
        info = {"layer": used}
    seconds = time.perf_counter() - t0
    attr = attr.detach().float().cpu()
    pixel = attr[0] if method == "gradcam" else aggregate(attr, aggregate_by)
    info["score"] = "logit" if method == "gradcam" else score
    problem = degenerate(attr, resolution(ex, x, k, method, score, deltas))
    if problem:
        info["degenerate"] = problem
        hint = "" if score != "prob" else "; score='logprob' (the default) does not saturate"
        warnings.warn(f"{method} saliency of '{ex.classes[k]}' (p = {prob:.4f}): {problem}{hint}", stacklevel=2)
    return SaliencyMap(method, k, ex.classes[k], prob, attr, pixel, seconds, info)


def resolution(ex: Explainable, x: Tensor, target: int, method: str, score: str, deltas: Sequence[float]) -> float:
    """The smallest attribution a method can tell from rounding: a few float64 ulps of the score, per pixel
    step, for the methods that difference scores (perturbation, occlusion); float32's smallest normal number
    for the gradient methods (anything below it is underflow, not a signal)."""
    if method not in ("perturbation", "occlusion"):
        return float(torch.finfo(torch.float32).tiny)
    with torch.inference_mode():
        s0 = abs(float(ex.score(x[None], target, score)[0]))
    ulps = 8 * torch.finfo(torch.float64).eps * max(s0, 1e-300)
    return ulps * 255 / min(abs(float(d)) for d in deltas) if method == "perturbation" else ulps


def degenerate(attr: Tensor, floor: float = 0.0) -> str | None:
    """Why a map says nothing ('all zero', 'below numerical noise': no attribution above ``floor``), or None
    when it has a signal."""
    top = float(attr.abs().max()) if attr.numel() else 0.0
    if top == 0.0 or not math.isfinite(top):
        return "the map is all zero" if top == 0.0 else "the map is not finite"
    if top <= floor:
        return f"the map is below numerical noise (max |attribution| {top:.1e} <= {floor:.1e})"
    return None
