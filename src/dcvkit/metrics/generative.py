"""Metrics of generative models that work offline, as plain functions on tensors.

* :func:`frechet_distance` between two Gaussians fitted to features (FID's formula, Heusel et al. 2017).
  dcvkit computes it on the features of a Fashion-MNIST classifier trained by dcvkit ("FID-FMNIST"): the
  same formula, other features, so its values are **not comparable to Inception FID**.
* :func:`class_coverage`: the class histogram of generated samples under a classifier (mode coverage).
* :func:`importance_sampled_nll`: log p(x) estimated with K importance samples from q(z|x) (Burda et al.
  2016); K = 1 is an ELBO estimate, and the bound tightens as K grows.
* :func:`active_units`: latent dimensions whose posterior mean varies with x (Cov_x E_q[z_u] > 0.01,
  Burda et al. 2016): dimensions the KL term switched off ("posterior collapse") are inactive.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from dcvkit.losses.generative import reconstruction_nll


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (F,) and covariance (F, F), float64, of features (N, F)."""
    f = features.double()
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / max(len(f) - 1, 1)


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    Tr (C1 C2)^(1/2) is computed as the sum of the square roots of the eigenvalues of the symmetric matrix
    C1^(1/2) C2 C1^(1/2) (the same eigenvalues as C1 C2): two ``eigh`` calls in float64, no complex
    parts to discard (scipy's ``sqrtm`` of the non-symmetric C1 C2, used by the reference FID code, can
    return them)."""
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    w, v = torch.linalg.eigh(cov1)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T
    m = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0)
    return float((mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * eig.sqrt().sum())


def class_coverage(labels: Tensor, classes: Sequence[str], min_share: float = 0.1) -> dict[str, Any]:
    """The class histogram of generated samples (``labels``: the classifier's ids). A class counts as
    covered when it gets at least ``min_share`` of its fair share (1/K), else it is listed as ``rare``;
    ``entropy`` is normalised to [0, 1] (1: uniform). ``mode_collapse`` flags fewer than K covered classes."""
    k = len(classes)
    counts = torch.bincount(labels.long().flatten(), minlength=k)[:k].double()
    share = counts / counts.sum().clamp_min(1)
    nz = share[share > 0]
    entropy = max(0.0, float(-(nz * nz.log()).sum() / math.log(k))) if k > 1 else 1.0
    rare = [c for c, s in zip(classes, share.tolist()) if s < min_share / k]
    return {"histogram": {c: int(n) for c, n in zip(classes, counts.tolist())}, "covered": k - len(rare),
            "rare": rare,
            "classes": k, "entropy": round(entropy, 4), "max_share": round(float(share.max()), 4),
            "mode_collapse": bool(rare)}


@torch.no_grad()
def importance_sampled_nll(model: Any, x: Tensor, y: Tensor | None = None, samples: int = 64,
                           reconstruction: str = "bce", chunk: int = 16) -> Tensor:
    """-log p(x) per image (B,), estimated as -logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] + log K
    with z_k ~ q(z|x). ``model``: a VAE (``encode``, ``decode``); x (B, C, H, W) in [0, 1]. log p(x|z) is
    minus :func:`~dcvkit.losses.generative.reconstruction_nll` (for ``mse``: up to the Gaussian's constant,
    as in the reported negative ELBO, so the two compare)."""
    mu, logvar = model.encode(x, y)
    std = (0.5 * logvar).exp()
    log_w = []
    for k0 in range(0, samples, chunk):
        k = min(chunk, samples - k0)
        eps = torch.randn(k, *mu.shape, device=mu.device)
        z = mu + std * eps  # (k, B, D)
        yk = None if y is None else y.repeat(k, *([1] * (y.ndim - 1)))
        logits = model.decode(z.flatten(0, 1), yk)
        log_px = -reconstruction_nll(logits, x.repeat(k, 1, 1, 1), reconstruction).view(k, -1)
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_qz = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_w.append(log_px + log_pz - log_qz)
    lw = torch.cat(log_w).double()
    return -(torch.logsumexp(lw, 0) - math.log(samples))


def active_units(mu: Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across the data: Var_x(mu_u) > threshold.
    mu: (N, D) encoder means of N images."""
    return int((mu.double().var(0) > threshold).sum())


__all__ = ["gaussian_stats", "frechet_distance", "class_coverage", "importance_sampled_nll", "active_units"]
