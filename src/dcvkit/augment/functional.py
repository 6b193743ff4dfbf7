"""Batched augmentation ops: every function takes a whole batch and per-image parameters.

Images are float tensors ``(B, C, H, W)`` in pixel units (0-255 for 8-bit data), on any device. The geometry
is one output->input matrix per image, in Keras' (scipy's) convention: index coordinates ``(row, col)``,
pixel centres at integers, the matrix maps an output pixel to the input point it samples. A whole batch is
warped by one grid computation and one ``grid_sample`` call; masks and boxes go through the same matrices.

Why not torchvision's ``v2.functional.affine``: it applies one set of parameters to a whole batch (per-image
parameters would mean one call per image, the slow path this module replaces), fills only with constants,
and composes rotation/shear/scale differently from Keras. ``grid_sample`` gives nearest (``border``) and
reflect (``reflection``, about the pixel edges = scipy's ``reflect``) fills; ``wrap`` and Keras' ``constant``
(cval outside the pixel-centre hull, no blending with the edge) are written here.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dcvkit.augment.config import AugmentParams

# --- matrices ----------------------------------------------------------------------------------------


def _eye(n: int) -> Tensor:
    return torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)


def keras_matrices(p: AugmentParams, size: tuple[int, int]) -> Tensor:
    """(B, 3, 3) output->input matrices of Keras' ``apply_affine_transform`` followed by its flips.

    Keras (with scipy) composes ``rotation @ shift @ shear @ zoom`` about the image centre
    ``(h/2 - 0.5, w/2 - 0.5)``, in (row, col) coordinates: ``tx``/``zx`` act on rows, ``ty``/``zy`` on
    columns. The flips come after the warp in Keras, so their matrices multiply on the right.
    """
    h, w = size
    n = len(p.theta)
    t, s = torch.deg2rad(p.theta), torch.deg2rad(p.shear)
    rot, shift, shear, zoom = _eye(n), _eye(n), _eye(n), _eye(n)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t.cos(), -t.sin(), t.sin(), t.cos()
    shift[:, 0, 2], shift[:, 1, 2] = p.tx, p.ty
    shear[:, 0, 1], shear[:, 1, 1] = -s.sin(), s.cos()
    zoom[:, 0, 0], zoom[:, 1, 1] = p.zx, p.zy
    centre, back = _eye(n), _eye(n)
    centre[:, 0, 2], centre[:, 1, 2] = h / 2 - 0.5, w / 2 - 0.5
    back[:, :2, 2] = -centre[:, :2, 2]
    m = centre @ rot @ shift @ shear @ zoom @ back
    flip = _eye(n)
    flip[p.vflip, 0, 0], flip[p.vflip, 0, 2] = -1.0, h - 1.0
    flip[p.hflip, 1, 1], flip[p.hflip, 1, 2] = -1.0, w - 1.0
    return m @ flip


def crop_matrices(crop: Tensor, padding: int) -> Tensor:
    """(B, 3, 3) matrices taking a crop's pixels to the (unpadded) image: a whole-pixel translation."""
    m = _eye(len(crop))
    m[:, 0, 2], m[:, 1, 2] = crop[:, 0].double() - padding, crop[:, 1].double() - padding
    return m


# --- images and masks --------------------------------------------------------------------------------

_PADDING = {"nearest": "border", "reflect": "reflection", "wrap": "border", "constant": "border"}


def warp(x: Tensor, matrix: Tensor, out_size: tuple[int, int] | None = None, fill_mode: str = "nearest",
         cval: float = 0.0, order: int = 1) -> Tensor:
    """Resample every image of ``x`` (B, C, H, W) at ``matrix @ (row, col, 1)`` -> (B, C, h, w).

    ``order`` 1 is bilinear, 0 nearest; ``fill_mode`` as in Keras/scipy: nearest, reflect, wrap, constant.
    """
    b, _, h, w = x.shape
    oh, ow = out_size or (h, w)
    # The sampling grid in grid_sample's normalised (x, y) coordinates, built as one broadcast add of a
    # per-column and a per-row term: F.affine_grid's batched matmul took as long as the sampling at 224 px.
    to_pixels = torch.tensor([[0, oh / 2, (oh - 1) / 2], [ow / 2, 0, (ow - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    to_norm = torch.tensor([[0, 2 / w, 1 / w - 1], [2 / h, 0, 1 / h - 1], [0, 0, 1]], dtype=torch.float64)
    theta = (to_norm @ matrix.double().cpu() @ to_pixels)[:, :2].to(device=x.device, dtype=torch.float32)
    xs = (2 * torch.arange(ow, device=x.device, dtype=torch.float32) + 1) / ow - 1
    ys = (2 * torch.arange(oh, device=x.device, dtype=torch.float32) + 1) / oh - 1
    grid = (xs.view(1, 1, ow, 1) * theta[:, None, None, :, 0]
            + (ys.view(1, oh, 1, 1) * theta[:, None, None, :, 1] + theta[:, None, None, :, 2]))
    src = x
    if fill_mode == "wrap":
        c = (grid[..., 0] + 1) * (w / 2) - 0.5   # input (row, col) of each output pixel
        r = (grid[..., 1] + 1) * (h / 2) - 0.5  # periodic tiling: wrap the coordinates, pad one circular pixel for the blend
        r = torch.remainder(r + 0.5, h) + 0.5
        c = torch.remainder(c + 0.5, w) + 0.5
        src = F.pad(x, (1, 1, 1, 1), mode="circular")
        grid = torch.stack([(2 * c + 1) / (w + 2) - 1, (2 * r + 1) / (h + 2) - 1], -1)
    out = F.grid_sample(src, grid, mode="bilinear" if order == 1 else "nearest",
                        padding_mode=_PADDING[fill_mode], align_corners=False)
    if fill_mode == "constant":
        # scipy's "constant" (either order): cval wherever the point lies outside the hull of the pixel
        # centres (row in [0, h-1] is |y| <= 1 - 1/h in normalised units), plain interpolation inside;
        # 1e-4 px absorbs float32 round-off (points closer than that to the hull may differ from scipy).
        inside = ((grid[..., 0].abs() <= 1 - (1 - 2e-4) / w) & (grid[..., 1].abs() <= 1 - (1 - 2e-4) / h)).unsqueeze(1)
        out = out * inside if cval == 0 else torch.where(inside, out, torch.tensor(cval, dtype=out.dtype,
                                                                                   device=out.device))
    return out


def warp_masks(masks: Tensor, matrix: Tensor, out_size: tuple[int, int] | None = None,
               fill_mode: str = "nearest", fill: int = 0) -> Tensor:
    """Label maps (B, H, W) through the same matrices, nearest neighbour (labels are never blended);
    points outside the image take ``fill`` when ``fill_mode`` is constant."""
    out = warp(masks.unsqueeze(1).float(), matrix, out_size, fill_mode, float(fill), order=0)
    return out.squeeze(1).round().to(masks.dtype)


def warp_boxes(boxes: list[Tensor], matrix: Tensor, out_size: tuple[int, int], min_size: float = 2.0,
               min_visibility: float = 0.25) -> tuple[list[Tensor], list[Tensor]]:
    """Move boxes ``(x1, y1, x2, y2)`` (pixel edges, one (n_i, 4) tensor per image) with the images.

    The four corners go through the inverse (input->output) matrix; the new box is their bounding box,
    clipped to the output. A box is dropped when it is narrower or lower than ``min_size`` pixels or when
    less than ``min_visibility`` of its (transformed) area stays in the image.

    Returns the kept boxes and, per image, the indices of the kept boxes (to select their labels).
    """
    oh, ow = out_size
    counts = [len(bx) for bx in boxes]
    if sum(counts) == 0:
        return [bx.reshape(0, 4) for bx in boxes], [torch.zeros(0, dtype=torch.long) for _ in boxes]
    allb = torch.cat([bx.reshape(-1, 4).double().cpu() for bx in boxes])
    owner = torch.repeat_interleave(torch.arange(len(boxes)), torch.tensor(counts))
    inv = torch.linalg.inv(matrix.double().cpu())[owner]                     # (N, 3, 3)
    x1, y1, x2, y2 = allb.unbind(1)
    xs = torch.stack([x1, x2, x1, x2], 1) - 0.5                              # pixel edges -> index coords
    ys = torch.stack([y1, y1, y2, y2], 1) - 0.5
    pts = torch.stack([ys, xs, torch.ones_like(xs)], 1)                       # (N, 3, 4) as (row, col, 1)
    out = inv @ pts
    ny, nx = out[:, 0] + 0.5, out[:, 1] + 0.5
    nb = torch.stack([nx.amin(1), ny.amin(1), nx.amax(1), ny.amax(1)], 1)
    area = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
    nb[:, 0::2] = nb[:, 0::2].clamp(0, ow)
    nb[:, 1::2] = nb[:, 1::2].clamp(0, oh)
    bw, bh = nb[:, 2] - nb[:, 0], nb[:, 3] - nb[:, 1]
    keep = (bw >= min_size) & (bh >= min_size) & (bw * bh >= min_visibility * area.clamp_min(1e-9))
    kept, index = [], []
    for i, bx in enumerate(boxes):
        sel = (owner == i) & keep
        kept.append(nb[sel].to(bx.dtype if bx.is_floating_point() else torch.float32))
        index.append(torch.nonzero(keep[owner == i]).flatten())
    return kept, index


def flip(x: Tensor, hflip: Tensor, vflip: Tensor) -> Tensor:
    """Per-image flips without resampling (the fast path when there is no other geometry)."""
    shape = (-1,) + (1,) * (x.ndim - 1)
    if hflip.any():
        x = torch.where(hflip.to(x.device).view(shape), x.flip(-1), x)
    if vflip.any():
        x = torch.where(vflip.to(x.device).view(shape), x.flip(-2), x)
    return x


def flip_boxes(boxes: list[Tensor], hflip: Tensor, vflip: Tensor, size: tuple[int, int]) -> list[Tensor]:
    h, w = size
    out = []
    for bx, hf, vf in zip(boxes, hflip.tolist(), vflip.tolist()):
        bx = bx.clone()
        if hf:
            bx[:, [0, 2]] = w - bx[:, [2, 0]]
        if vf:
            bx[:, [1, 3]] = h - bx[:, [3, 1]]
        out.append(bx)
    return out


def flip_keypoints(keypoints: list[Tensor], hflip: Tensor, width: int, flip_idx: Sequence[int]) -> list[Tensor]:
    """Keypoints (n_i, K, 3) ``x, y, v`` of the images flipped left-right by :func:`flip`: x -> width - x
    for labelled keypoints, and each keypoint moved to its mirror's slot through ``flip_idx`` (the left wrist
    of the flipped image is where the right wrist was: without the swap a model learns left and right as
    one). :func:`dcvkit.data.keypoints.flip_keypoints` on one image's array, batched."""
    order = torch.as_tensor(list(flip_idx), dtype=torch.long)
    out = []
    for k, hf in zip(keypoints, hflip.tolist()):
        if hf:
            k = k.clone()
            k[..., 0] = torch.where(k[..., 2] > 0, width - k[..., 0], k[..., 0])
            k = k[:, order]
        out.append(k)
    return out


# --- intensity ---------------------------------------------------------------------------------------


def _per_image(v: Tensor, x: Tensor) -> Tensor:
    return v.to(device=x.device, dtype=x.dtype).view(-1, *[1] * (x.ndim - 1))


def brightness(x: Tensor, factor: Tensor, max_value: float = 255.0) -> Tensor:
    """Multiply each image by its factor, clipped to [0, max_value] (PIL's ImageEnhance.Brightness, which
    Keras calls; Keras also rounds to 8 bits, which we skip)."""
    return (x * _per_image(factor, x)).clamp_(0, max_value)


def channel_shift(x: Tensor, shift: Tensor) -> Tensor:
    """Keras' channel shift: one value added to every channel, clipped to the image's own min and max."""
    dims = tuple(range(1, x.ndim))
    lo, hi = x.amin(dims, keepdim=True), x.amax(dims, keepdim=True)
    return torch.minimum(torch.maximum(x + _per_image(shift, x), lo), hi)


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)  # ITU-R 601, as torchvision's rgb_to_grayscale


def color_jitter(x: Tensor, factors: Tensor, max_value: float = 255.0) -> Tensor:
    """torchvision's ColorJitter with per-image ``factors`` (B, 4): brightness, contrast and saturation
    factors and a hue shift in turns. torchvision shuffles the order per call; here it is fixed (brightness,
    contrast, saturation, hue). Saturation and hue leave grayscale images unchanged."""
    f = factors.to(device=x.device, dtype=x.dtype)
    x = (x * f[:, 0].view(-1, 1, 1, 1)).clamp(0, max_value)
    mean = _gray(x).mean((1, 2, 3), keepdim=True)
    x = (mean + (x - mean) * f[:, 1].view(-1, 1, 1, 1)).clamp(0, max_value)
    if x.shape[1] == 3:
        gray = _gray(x)
        x = (gray + (x - gray) * f[:, 2].view(-1, 1, 1, 1)).clamp(0, max_value)
        if bool((f[:, 3] != 0).any()):
            x = shift_hue(x / max_value, f[:, 3]) * max_value
    return x


def shift_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of RGB images in [0, 1] by ``shift`` (B,) turns, through HSV (torchvision's
    ``adjust_hue`` takes one factor per call, so it cannot do a batch of different shifts)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, torch.remainder(h / 6.0 + shift.view(-1, 1, 1), 1.0), torch.zeros_like(h))
    i = torch.floor(h * 6.0)
    frac = h * 6.0 - i
    i = i.long() % 6
    v = maxc
    p, q, t = v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))
    table = torch.stack([torch.stack(c, 1) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))], 1)
    return table.gather(2, i.unsqueeze(1).unsqueeze(2).expand(-1, 3, 1, -1, -1)).squeeze(2)


def erase(x: Tensor, boxes: Tensor, value: float = 0.0) -> Tensor:
    """Set one rectangle per image, ``boxes`` (B, 4) = y0, x0, height, width (height 0: none), to ``value``."""
    h, w = x.shape[-2:]
    bx = boxes.to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_r = (rows >= bx[:, :1]) & (rows < bx[:, :1] + bx[:, 2:3])
    in_c = (cols >= bx[:, 1:2]) & (cols < bx[:, 1:2] + bx[:, 3:4])
    hole = (in_r.unsqueeze(2) & in_c.unsqueeze(1)).unsqueeze(1)
    return x.masked_fill(hole, value)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Antialiased bilinear resize of a batch (torchvision's v2 functional; one call for the batch)."""
    from torchvision.transforms.v2 import functional as TF

    return TF.resize(x, list(size), antialias=True)


def scale_boxes(boxes: list[Tensor], from_size: tuple[int, int], to_size: tuple[int, int]) -> list[Tensor]:
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scale = torch.tensor([sx, sy, sx, sy])
    return [bx * scale.to(bx.dtype) for bx in boxes]



# --- detection: mosaic and random affine ---------------------------------------------------------------


def _mosaic_plan(n: int, h: int, w: int, apply: Tensor, generator: torch.Generator
                 ) -> list[tuple[int, list[tuple[int, int, int]], int, int]]:
    """Per image ``i`` where ``apply`` is true: its four tiles (source image, x shift, y shift from the source
    into the window) and the window's offset (oy, ox) in the 2H x 2W canvas, image ``i`` top left."""
    plans = []
    for i in apply.nonzero().flatten().tolist():
        others = torch.randint(0, n, (3,), generator=generator).tolist()
        oy, ox = torch.randint(0, h + 1, (1,), generator=generator).item(), \
            torch.randint(0, w + 1, (1,), generator=generator).item()
        tiles = [(t, tx - ox, ty - oy) for t, (ty, tx) in zip([i, *others], ((0, 0), (0, w), (h, 0), (h, w)))]
        plans.append((i, tiles, oy, ox))
    return plans


def _mosaic_image(images: Tensor, tiles: list[tuple[int, int, int]], oy: int, ox: int, fill: int) -> Tensor:
    _, c, h, w = images.shape
    canvas = images.new_full((c, 2 * h, 2 * w), fill)
    for t, dx, dy in tiles:
        canvas[:, dy + oy:dy + oy + h, dx + ox:dx + ox + w] = images[t]
    return canvas[:, oy:oy + h, ox:ox + w]


def _mosaic_boxes(boxes: list[Tensor], tiles: list[tuple[int, int, int]], h: int, w: int, min_visibility: float
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """The tiles' boxes moved into the window and clipped, which of them are kept (a box keeping less than
    ``min_visibility`` of its area, or under 2 pixels a side, is not) and each one's tile index."""
    b = torch.cat([boxes[t].float() + boxes[t].new_tensor([dx, dy, dx, dy]).float() for t, dx, dy in tiles])
    tile = torch.cat([torch.full((len(boxes[t]),), q, dtype=torch.long) for q, (t, _, _) in enumerate(tiles)])
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    c = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (cw >= 2) & (ch >= 2) & (cw * ch >= min_visibility * area.clamp_min(1e-9))
    return c, keep, tile


def mosaic(images: Tensor, boxes: list[Tensor], labels: list[Tensor], apply: Tensor, generator: torch.Generator,
           min_visibility: float = 0.6, fill: int = 114) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """YOLOv4's mosaic within a batch: where ``apply`` (B,) is true, image ``i`` becomes an ``H x W`` window,
    at a random offset, of a ``2H x 2W`` canvas tiling image ``i`` with three other images of the batch.

    Boxes move with their tiles and are clipped to the window; a box keeping less than ``min_visibility``
    of its area (or under 2 pixels a side) is dropped with its label. Images (B, C, H, W) uint8 or float.
    """
    n, _, h, w = images.shape
    out, out_boxes, out_labels = images.clone(), list(boxes), list(labels)
    for i, tiles, oy, ox in _mosaic_plan(n, h, w, apply, generator):
        out[i] = _mosaic_image(images, tiles, oy, ox, fill)
        c, keep, _ = _mosaic_boxes(boxes, tiles, h, w, min_visibility)
        out_boxes[i], out_labels[i] = c[keep], torch.cat([labels[t] for t, _, _ in tiles])[keep]
    return out, out_boxes, out_labels


def mosaic_keypoints(images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor],
                     apply: Tensor, generator: torch.Generator, min_visibility: float = 0.6, fill: int = 114
                     ) -> tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]:
    """:func:`mosaic` for people: their keypoints (n_i, K, 3) move with their tiles, and a keypoint the window
    cuts off becomes unlabelled (v = 0, at 0, 0, as COCO writes one); a kept person's area (OKS's scale) stays
    the whole person's."""
    n, _, h, w = images.shape
    out, ob, ok, oa = images.clone(), list(boxes), list(keypoints), list(areas)
    for i, tiles, oy, ox in _mosaic_plan(n, h, w, apply, generator):
        out[i] = _mosaic_image(images, tiles, oy, ox, fill)
        c, keep, _ = _mosaic_boxes(boxes, tiles, h, w, min_visibility)
        k = torch.cat([keypoints[t].float() + keypoints[t].new_tensor([dx, dy, 0]).float() for t, dx, dy in tiles])
        ob[i], ok[i] = c[keep], _unlabel_outside(k[keep], h, w)
        oa[i] = torch.cat([areas[t] for t, _, _ in tiles])[keep]
    return out, ob, ok, oa


def _unlabel_outside(k: Tensor, h: int, w: int) -> Tensor:
    """Keypoints (n, K, 3) outside the ``h x w`` image become unlabelled (v = 0 at 0, 0)."""
    inside = (k[..., 0] >= 0) & (k[..., 0] < w) & (k[..., 1] >= 0) & (k[..., 1] < h) & (k[..., 2] > 0)
    return torch.where(inside[..., None], k, torch.zeros_like(k))


def _affine_matrix(b: int, h: int, w: int, scale: float, translate: float, generator: torch.Generator
                   ) -> tuple[Tensor, Tensor]:
    """Random scale-about-the-centre and shift matrices (B, 3, 3), output (row, col, 1) -> input, and the
    scale factors (B,)."""
    s = 1 + scale * (2 * torch.rand(b, generator=generator, dtype=torch.float64) - 1)
    t = translate * (2 * torch.rand(b, 2, generator=generator, dtype=torch.float64) - 1) * torch.tensor([h, w])
    m = torch.zeros(b, 3, 3, dtype=torch.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    m[:, 0, 0] = m[:, 1, 1] = 1 / s
    m[:, 0, 2] = cy - (cy + t[:, 0]) / s
    m[:, 1, 2] = cx - (cx + t[:, 1]) / s
    m[:, 2, 2] = 1
    return m, s


def _warp_images(images: Tensor, m: Tensor, fill: int) -> Tensor:
    out = warp(images.float(), m, fill_mode="constant", cval=float(fill))
    if images.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out


def random_affine(images: Tensor, boxes: list[Tensor], labels: list[Tensor], scale: float, translate: float,
                  generator: torch.Generator, fill: int = 114) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """YOLO's random affine for detection: each image scaled about its centre by a factor in
    ``[1 - scale, 1 + scale]`` and shifted by up to ``translate`` of its size, the uncovered part filled grey;
    boxes move with it (:func:`warp_boxes`: clipped, dropped when under a quarter stays visible) and their
    labels with them. Images (B, C, H, W) uint8 or float."""
    b, _, h, w = images.shape
    m, _ = _affine_matrix(b, h, w, scale, translate, generator)
    out = _warp_images(images, m, fill)
    kept, index = warp_boxes(boxes, m, (h, w))
    return out, [k.to(images.device) for k in kept], [lab[i.to(lab.device)] for lab, i in zip(labels, index)]


def random_affine_keypoints(images: Tensor, boxes: list[Tensor], keypoints: list[Tensor], areas: list[Tensor],
                            scale: float, translate: float, generator: torch.Generator, fill: int = 114
                            ) -> tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]:
    """:func:`random_affine` for people: keypoints (n_i, K, 3) go through the same matrix as the image (those
    leaving it become unlabelled), areas scale with the square of the factor."""
    b, _, h, w = images.shape
    m, s = _affine_matrix(b, h, w, scale, translate, generator)
    out = _warp_images(images, m, fill)
    kept, index = warp_boxes(boxes, m, (h, w))
    inv = torch.linalg.inv(m)
    ks, as_ = [], []
    for j, (k, a, idx) in enumerate(zip(keypoints, areas, index)):
        k = k[idx.to(k.device)].double()
        pts = torch.stack([k[..., 1] - 0.5, k[..., 0] - 0.5, torch.ones_like(k[..., 0])], -1)  # (row, col, 1)
        moved = pts @ inv[j].T.to(pts)
        k = torch.stack([moved[..., 1] + 0.5, moved[..., 0] + 0.5, k[..., 2]], -1)
        ks.append(_unlabel_outside(k, h, w).to(keypoints[j].dtype if keypoints[j].is_floating_point()
                                                else torch.float32))
        as_.append((a[idx.to(a.device)].double() * float(s[j]) ** 2).to(a.dtype))
    return out, [k.to(images.device) for k in kept], ks, as_
