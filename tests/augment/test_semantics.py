"""Each augmentation parameter means what Keras' ImageDataGenerator (or torchvision) says it means.

Every check fixes the random draws and compares the batched torch path with an independent reference: a
hand-computed result (pixels moved by a known amount, ``np.roll``, ``np.rot90``, ``np.pad``), a hand-written
matrix, scipy.ndimage (Keras' own backend, :mod:`dcvkit.augment.reference`), numpy statistics, or
torchvision's per-image functional ops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcvkit.augment import AugmentConfig, AugmentParams, Augmenter, parse_augment, sample_params
from dcvkit.augment import functional as AF
from dcvkit.augment.reference import apply_transform, keras_matrix, params_of
from dcvkit.errors import ConfigError


def params(n: int = 1, **kw) -> AugmentParams:
    """Fixed draws: the identity unless given."""
    return AugmentParams.fixed(n, **kw)


def run(cfg: AugmentConfig, x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    return Augmenter(cfg).augment(x, params=p).images


def dot(h: int, w: int, r: int, c: int) -> torch.Tensor:
    x = torch.zeros(1, 1, h, w)
    x[0, 0, r, c] = 255
    return x


def where(x: torch.Tensor) -> tuple[int, int]:
    r, c = np.unravel_index(int(x.flatten().argmax()), x.shape[-2:])
    return int(r), int(c)


# --- shifts ----------------------------------------------------------------------------------------------


def test_shift_ranges_follow_keras_int_float_list_rules():
    g = torch.Generator().manual_seed(0)
    draw = lambda r: sample_params(AugmentConfig(width_shift_range=r), 4000, (20, 40), g).ty  # noqa: E731
    frac = draw(0.25)  # float < 1: uniform in [-0.25, 0.25) of the width (40 px) -> up to 10 px
    assert frac.abs().max() <= 10 and frac.abs().max() > 9.5 and not torch.allclose(frac, frac.round())
    px = draw(3.0)  # float >= 1: uniform pixels in [-3, 3)
    assert px.abs().max() <= 3 and px.abs().max() > 2.9
    assert set(draw(3).tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # int n: np.random.choice(range(n)) * sign
    assert set(draw([0.1, 0.2]).tolist()) == {-8.0, -4.0, 4.0, 8.0}  # list of fractions: of the width
    assert set(draw([2, 5]).tolist()) == {-5.0, -2.0, 2.0, 5.0}  # list of pixels
    # height_shift_range is the row shift tx, scaled by the height
    tx = sample_params(AugmentConfig(height_shift_range=0.5), 2000, (20, 40), g).tx
    assert 9.5 < tx.abs().max() <= 10


def test_shift_moves_the_content_by_hand_computed_pixels():
    # Keras samples output (r, c) at input (r + tx, c + ty): a positive shift moves the content up / left.
    cfg = AugmentConfig(width_shift_range=0.2, height_shift_range=0.2, interpolation_order=0)
    x = dot(20, 30, 10, 12)
    assert where(run(cfg, x, params(tx=3, ty=-5))) == (7, 17)
    # a fraction is the same as its pixels: 0.1 of 30 columns is 3 pixels (shift drawn as Keras does)
    g = torch.Generator().manual_seed(1)
    p = sample_params(AugmentConfig(width_shift_range=[0.1]), 1, (20, 30), g)
    assert abs(float(p.ty[0])) == pytest.approx(3.0)
    assert where(run(cfg, x, p)) == (10, 12 - int(p.ty[0]))


def test_wrap_shift_is_np_roll():
    x = torch.randint(0, 256, (2, 3, 12, 16)).float()
    out = run(AugmentConfig(width_shift_range=0.5, height_shift_range=0.5, fill_mode="wrap"), x, params(2, tx=5, ty=-7))
    assert torch.allclose(out, torch.from_numpy(np.roll(x.numpy(), (-5, 7), axis=(2, 3))), atol=1e-3)


# --- rotation, shear, zoom -------------------------------------------------------------------------------


def test_rotation_by_90_degrees_is_rot90():
    # Keras' matrix maps output (r, c) to input (n-1-c, r) for theta = 90: np.rot90(x, -1).
    x = torch.randint(0, 256, (1, 2, 9, 9)).float()
    out = run(AugmentConfig(rotation_range=90), x, params(theta=90))
    assert torch.allclose(out, torch.from_numpy(np.rot90(x.numpy(), -1, axes=(2, 3)).copy()), atol=1e-3)


def test_shear_is_in_degrees_with_keras_matrix():
    s = 30.0
    hand = np.array([[1.0, -math.sin(math.radians(s)), 0], [0, math.cos(math.radians(s)), 0], [0, 0, 1]])
    h, w = 11, 15
    centre = np.array([[1, 0, h / 2 - 0.5], [0, 1, w / 2 - 0.5], [0, 0, 1]])
    expected = centre @ hand @ np.linalg.inv(centre)
    got = AF.keras_matrices(params(shear=s), (h, w))[0].numpy()
    assert np.allclose(got, expected)
    # and applied: a bright vertical line leans by tan(30 deg) per row... checked against scipy with that matrix
    from scipy import ndimage

    img = np.zeros((h, w))
    img[:, 7] = 255
    ref = ndimage.affine_transform(img, expected[:2, :2], expected[:2, 2], order=1, mode="nearest")
    out = run(AugmentConfig(shear_range=45), torch.from_numpy(img).float()[None, None], params(shear=s))
    assert np.abs(out[0, 0].numpy() - ref).max() < 0.01


def test_zoom_above_one_shrinks_the_object_and_axes_are_independent():
    x = torch.zeros(1, 1, 40, 40)
    x[..., 16:24, 16:24] = 255  # an 8x8 square in the centre
    cfg = AugmentConfig(zoom_range=[0.5, 2.0], interpolation_order=0)

    def extent(img):
        on = img[0, 0] > 127
        rows, cols = on.any(1).nonzero().flatten(), on.any(0).nonzero().flatten()
        return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)

    assert extent(run(cfg, x, params(zx=2, zy=2))) == (4, 4)    # samples a larger area: looks smaller
    assert extent(run(cfg, x, params(zx=0.5, zy=0.5))) == (16, 16)
    assert extent(run(cfg, x, params(zx=2, zy=1))) == (4, 8)    # zx acts on rows (height) only
    lo, hi = AugmentConfig(zoom_range=0.2).zoom
    assert (lo, hi) == pytest.approx((0.8, 1.2))
    p = sample_params(AugmentConfig(zoom_range=0.2), 500, (8, 8), torch.Generator().manual_seed(0))
    assert not torch.equal(p.zx, p.zy) and 0.8 <= p.zx.min() and p.zy.max() <= 1.2


# --- fill modes and the whole random transform vs scipy ------------------------------------------------


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
def test_fill_modes_by_hand(fill_mode):
    # shift left by 5 of 8 columns: columns 3..7 of the output sample outside the image
    x = torch.arange(8, dtype=torch.float32).repeat(1, 1, 2, 1) * 10 + 10   # row = [10, 20, ..., 80]
    out = run(AugmentConfig(width_shift_range=0.9, fill_mode=fill_mode, cval=7), x, params(ty=5))[0, 0, 0]
    row = (np.arange(8) * 10 + 10).astype(float)
    src = np.arange(8) + 5
    expected = {"nearest": row[np.minimum(src, 7)],
                "reflect": row[np.where(src < 8, src, 15 - src)],   # dcba|abcd|dcba
                "wrap": row[src % 8],                               # abcd|abcd|abcd
                "constant": np.where(src < 8, row[np.minimum(src, 7)], 7.0)}[fill_mode]
    assert np.allclose(out.numpy(), expected), (out, expected)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "wrap", "constant"])
def test_random_transform_matches_scipy_reference(fill_mode, order):
    cfg = AugmentConfig(rotation_range=40, width_shift_range=0.3, height_shift_range=0.3, shear_range=20,
                        zoom_range=[0.7, 1.3], horizontal_flip=True, vertical_flip=True, channel_shift_range=30,
                        brightness_range=[0.5, 1.5], fill_mode=fill_mode, cval=33, interpolation_order=order)
    x = torch.randint(0, 256, (6, 3, 17, 23)).float()
    aug = Augmenter(cfg, seed=3)
    out = aug.augment(x)
    ref = np.stack([apply_transform(x[i].double().numpy(), params_of(out.params, i), fill_mode, 33, order)
                    for i in range(len(x))])
    diff = np.abs(out.images.numpy() - ref)
    if fill_mode == "constant":
        # only points within float32 round-off of the image's edge may land on the other side of it
        assert (diff > 0.01).mean() < 2e-3
    else:
        assert diff.max() < 0.01


# --- intensity -------------------------------------------------------------------------------------------


def test_brightness_and_channel_shift():
    x = torch.tensor([[[[10.0, 100.0], [200.0, 250.0]]]]).repeat(1, 3, 1, 1)
    x[0, 1] -= 5
    out = run(AugmentConfig(brightness_range=[0.5, 1.5]), x, params(brightness=[1.5]))
    assert torch.equal(out, (x * 1.5).clamp(0, 255))
    out = run(AugmentConfig(channel_shift_range=50), x, params(channel_shift=[20.0]))
    # one shift for all channels, clipped to the image's own [min, max] (Keras), not to [0, 255]
    assert torch.equal(out, (x + 20).clamp(float(x.min()), float(x.max())))
    assert float(out.max()) == 250.0


def test_color_jitter_matches_torchvision_per_image():
    from torchvision.transforms.v2 import functional as TF

    x = torch.randint(0, 256, (3, 3, 10, 12)).float()
    factors = torch.tensor([[1.2, 0.7, 1.5, 0.1], [0.8, 1.3, 0.4, -0.2], [1.0, 1.0, 1.0, 0.0]])
    out = run(AugmentConfig(color_jitter=[0.3, 0.3, 0.6, 0.3]), x, params(3, jitter=factors)) / 255
    for i, (b, c, s, h) in enumerate(factors.tolist()):
        ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i] / 255, b), c), s), h)
        assert (out[i] - ref).abs().max() < 2e-3, i


def test_random_erasing_and_cutout():
    x = torch.full((64, 1, 20, 20), 100.0)
    out = Augmenter(AugmentConfig(cutout=8, erase_value=3), seed=0).augment(x).images
    holes = out == 3
    assert ((out == 100) | holes).all()
    for hole in holes[:, 0]:  # one axis-aligned square of side <= 8 (clipped at the border)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8 and int(hole.sum()) == len(rows) * len(cols)
    assert (holes.flatten(1).sum(1) == 64).float().mean() > 0.3  # most squares lie fully inside
    out = Augmenter(AugmentConfig(random_erasing=1.0), seed=0).augment(x).images
    area = (out == 0).flatten(1).float().mean(1)
    assert (area > 0.015).all() and (area < 0.36).all()
    out = Augmenter(AugmentConfig(random_erasing=0.5), seed=0).augment(x).images
    assert 10 < int(((out == 0).flatten(1).any(1)).sum()) < 54


@pytest.mark.parametrize("fill_mode,np_mode", [("constant", "constant"), ("reflect", "symmetric"),
                                               ("nearest", "edge"), ("wrap", "wrap")])
def test_random_crop_with_padding_is_pad_then_crop(fill_mode, np_mode):
    x = torch.randint(0, 256, (4, 2, 12, 12)).float()
    cfg = AugmentConfig(random_crop=[10, 12], crop_padding=3, fill_mode=fill_mode)
    aug = Augmenter(cfg, seed=5)
    out = aug.augment(x)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (3, 3)), mode=np_mode)
    for i, (r, c) in enumerate(out.params.crop.tolist()):
        assert np.allclose(out.images[i].numpy(), padded[i, :, r:r + 10, c:c + 12], atol=1e-3), i
    assert out.images.shape == (4, 2, 10, 12) and aug.output_size((12, 12)) == (10, 12)


def test_resize_is_torchvision_antialiased_resize():
    from torchvision.transforms.v2 import functional as TF

    x = torch.randint(0, 256, (2, 3, 20, 30)).float()
    out = Augmenter(AugmentConfig(resize=[10, 12])).augment(x).images
    assert torch.allclose(out, TF.resize(x, [10, 12], antialias=True))


# --- standardization: rescale, samplewise, featurewise, ZCA -----------------------------------------------


def test_featurewise_statistics_after_fit_match_numpy():
    x = torch.randint(0, 256, (50, 3, 6, 5), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    aug = Augmenter(AugmentConfig(featurewise_std_normalization=True)).fit(x)  # implies featurewise_center
    xn = x.double().numpy()
    mean = xn.mean(axis=(0, 2, 3))
    std = (xn - mean[None, :, None, None]).std(axis=(0, 2, 3))
    assert np.allclose(aug.mean.numpy(), mean, rtol=1e-5) and np.allclose(aug.std.numpy(), std, rtol=1e-5)
    out = aug.standardize(x.float()).numpy()
    assert np.allclose(out, (xn - mean[None, :, None, None]) / (std[None, :, None, None] + 1e-6), atol=1e-4)
    # rescale is applied before the statistics (Keras' fit() forgets it; see docs/augmentation.md)
    aug = Augmenter(AugmentConfig(rescale=1 / 255, featurewise_center=True)).fit(x)
    assert np.allclose(aug.mean.numpy(), mean / 255, rtol=1e-5)


def test_zca_whitening_matches_keras_formula_and_whitens():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(600, 1, 4, 4, generator=g)
    x = (base + 0.5 * base.roll(1, -1)) * 30 + 128  # correlated neighbouring pixels
    eps = 1e-6
    aug = Augmenter(AugmentConfig(zca_whitening=True, zca_epsilon=eps)).fit(x)
    # Keras: flat = centred (N, D); sigma = flat.T flat / N; u, s = svd(sigma); pc = u diag(1/sqrt(s + eps)) u.T
    flat = x.double().numpy().reshape(600, -1)
    flat = flat - flat.mean()  # featurewise_center: one mean per channel (one channel here)
    sigma = flat.T @ flat / len(flat)
    u, s, _ = np.linalg.svd(sigma)
    pc = (u * (1 / np.sqrt(s[np.newaxis] + eps))) @ u.T
    assert np.allclose(aug.principal_components.numpy(), pc, rtol=1e-3, atol=1e-5)
    white = aug.standardize(x).flatten(1).double().numpy()
    assert np.allclose(white.T @ white / len(white), np.eye(16), atol=1e-3)
    with pytest.raises(ConfigError, match="not fitted"):
        Augmenter(AugmentConfig(zca_whitening=True)).standardize(x)


def test_samplewise_centering_and_normalisation():
    x = torch.randint(0, 256, (5, 3, 8, 8)).float()
    cfg = AugmentConfig(samplewise_std_normalization=True)
    assert cfg.samplewise_center  # implied, as Keras does
    out = Augmenter(cfg).standardize(x)
    assert torch.allclose(out.mean((1, 2, 3)), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out.std((1, 2, 3), correction=0), torch.ones(5), atol=1e-4)


def test_normalize_is_torchvision_normalize_after_to_tensor():
    from torchvision.transforms.v2 import functional as TF

    x = torch.randint(0, 256, (2, 3, 4, 4)).float()
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    out = Augmenter(AugmentConfig(normalize=[mean, std])).standardize(x)
    assert torch.allclose(out, TF.normalize(x / 255, mean, std), atol=1e-6)


# --- the config --------------------------------------------------------------------------------------------


def test_config_parsing_inline_yaml_and_errors(tmp_path):
    cfg = parse_augment("rotation_range=10, width_shift_range=2, height_shift_range=2.0, zoom_range=[0.8, 1.1], "
                        "horizontal_flip=true, fill_mode=reflect")
    assert cfg.width_shift_range == 2 and isinstance(cfg.width_shift_range, int)   # int: Keras' pixel rule
    assert isinstance(cfg.height_shift_range, float) and cfg.zoom == (0.8, 1.1) and cfg.horizontal_flip
    assert parse_augment(cfg.inline()) == cfg  # what config.yaml saves reads back the same
    f = tmp_path / "aug.yaml"
    f.write_text("rotation_range: 15\nbrightness_range: [0.8, 1.2]\n")
    assert parse_augment(str(f)) == AugmentConfig(rotation_range=15, brightness_range=[0.8, 1.2])
    assert parse_augment(None) is None
    for bad, msg in (("rotation_rang=3", "rotation_rang"), ("fill_mode=mirror", "fill_mode"),
                     (str(tmp_path / "missing.yaml"), "missing.yaml"), ("zoom_range=[1.2, 0.8]", "zoom_range"),
                     ("brightness_range=1.2", "brightness_range"), ("validation_split=1.5", "validation_split")):
        with pytest.raises(ConfigError, match=msg):
            parse_augment(bad)
    assert AugmentConfig(zca_whitening=True).featurewise_center  # implied, as Keras does


def test_matrices_match_the_reference_formula():
    p = sample_params(AugmentConfig(rotation_range=30, width_shift_range=0.2, height_shift_range=0.2,
                                    shear_range=10, zoom_range=0.3), 5, (13, 21), torch.Generator().manual_seed(2))
    got = AF.keras_matrices(p, (13, 21)).numpy()
    for i in range(5):
        d = params_of(p, i)
        want = keras_matrix(d["theta"], d["tx"], d["ty"], d["shear"], d["zx"], d["zy"], 13, 21)
        assert np.allclose(got[i], want)


def test_the_same_seed_gives_the_same_augmentation_on_cpu_chunks():
    x = torch.randint(0, 256, (40, 3, 64, 64)).to(torch.uint8)
    cfg = AugmentConfig(rotation_range=20, horizontal_flip=True, brightness_range=[0.7, 1.3])
    a, b = Augmenter(cfg, seed=4).augment(x), Augmenter(cfg, seed=4).augment(x)
    assert torch.equal(a.images, b.images)
    # chunked (CPU cache) and unchunked computations agree
    import dcvkit.augment.pipeline as pl

    old, pl.CPU_CHUNK_VALUES = pl.CPU_CHUNK_VALUES, 10 ** 9
    try:
        whole = Augmenter(cfg, seed=4).augment(x).images
    finally:
        pl.CPU_CHUNK_VALUES = old
    assert torch.allclose(whole, a.images, atol=1e-4)
    assert F.mse_loss(a.images, x.float()) > 10  # and it did change the images
