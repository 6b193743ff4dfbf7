"""Every task's options, one dataclass per task: what ``dcv <task> train --help`` lists and ``config.yaml``
holds.

Each config inherits the shared fields (:class:`~dcvkit.config.TrainConfig` for the engine,
:class:`~dcvkit.config.ImageDataConfig` or :class:`~dcvkit.config.SceneDataConfig` for data) and adds the
task's own; a task that wants another default for a shared field says so with
:func:`~dcvkit.config.override` (help and choices stay the base's). The file imports neither torch nor the
task modules, so the CLI builds its parsers from it at once; the task modules (``tasks/classify.py``, ...)
import their config from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcvkit.choices import (CLASSIFICATION_LOSSES, DEVICES, GAN_LOSSES, KL_SCHEDULES, OPTIMIZERS, PROPOSAL_METHODS,
                            RECONSTRUCTION_LOSSES, ROI_OPS, SEGMENT_TARGETS, SEGMENTATION_LOSSES,
                            SELECTIVE_SEARCH_MODES, STEMS, TRACKERS, UPSAMPLING, VAE_ARCHS, VAE_RECONSTRUCTIONS)
from dcvkit.config import (AT_LEAST_0, AT_LEAST_1, BELOW_1, CHANNELS, FRACTION, IMAGE_SIDE, POSITIVE, WIDTH, Bounds,
                           DataConfig, ImageDataConfig, RunConfig, SceneDataConfig, TrainConfig, opt, override)
from dcvkit.errors import ConfigError


@dataclass
class ClassifyConfig(TrainConfig, ImageDataConfig):
    """Classification: model, loss, augmentation."""

    model: str = opt("cnn", "model name from `dcv models`")
    small_data: bool = opt(True, "on fewer than 2,000 training images, train with batch 32 and SGD lr 0.01 where "
                                 "--batch-size and --lr are at their defaults (a value equal to the default counts "
                                 "as the default: --no-small-data keeps them)")
    dropout: float | None = opt(None, "dropout probability (default: the model's own)", bounds=BELOW_1)
    width: float | None = opt(None, "channel-width multiplier of the model (default 1.0)", bounds=WIDTH)
    stem: str | None = opt(None, "input stem: auto (small under 64 px), small (3x3/1) or imagenet (strided)", STEMS)
    loss: str = opt("cross_entropy", "loss function", CLASSIFICATION_LOSSES)
    label_smoothing: float = opt(0.0, "label smoothing for the loss", bounds=BELOW_1)
    augment: str | None = opt(None, "data augmentation: a YAML file of Keras ImageDataGenerator-style options, or "
                              "inline 'rotation_range=10, width_shift_range=0.1, horizontal_flip=true' "
                              "(see docs/augmentation.md; preview with dcv augment preview)")
    hflip: bool = opt(False, "random horizontal flips during training (the same as augment horizontal_flip=true)")
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    # transfer learning
    pretrained: str | None = opt(None, "start from these weights: a dcvkit run/checkpoint, a torchvision/timm "
                                 "state-dict file, or a torchvision weights name (local torch cache; --download)")
    freeze_backbone: bool = opt(False, "train only the new head; the pretrained backbone stays fixed")
    unfreeze_at: int | None = opt(None, "with --freeze-backbone: fine-tune everything from this epoch (1-based)",
                                   bounds=AT_LEAST_1)
    backbone_lr: float = opt(0.1, "learning-rate factor for the pretrained backbone (the new head gets --lr); "
                                  "1 did better when the new classes differ from the old (dcv experiment transfer)",
                              bounds=AT_LEAST_0)


@dataclass
class SegmentConfig(TrainConfig, SceneDataConfig):
    """Segmentation: model, loss, augmentation."""

    data: str = opt("scenes", "scenes (FashionScenes: Fashion-MNIST items on textured backgrounds, 10 classes + "
                    "background), a folder of images/ + masks/ (docs/segmentation.md), or for --target image "
                    "also fashion-mnist, mnist or an image folder")
    scenes: int = override(8000)
    test_scenes: int = override(1000)
    target: str = opt("mask", "mask: a class per pixel; image: reconstruct the input (autoencoder)", SEGMENT_TARGETS)
    model: str = opt("unet", "segment model from `dcv models --task segment`")
    depth: int | None = opt(None, "max-pools in the encoder (default: the model's own, 4)", bounds=Bounds(1, 8))
    base: int | None = opt(None, "channels of the first section, doubled at each depth (default 8: 8-128 channels at "
                                 "depth 4)", bounds=CHANNELS)
    upsample: str | None = opt(None, "decoder upsampling (default bilinear)", UPSAMPLING)
    batch_norm: bool | None = opt(None, "batch norm after each convolution (default: on)")
    encoder: str | None = opt(None, "a ResNet of the registry as the encoder (resnet18, resnet34, resnet20, ...)")
    dropout: float | None = opt(None, "spatial dropout on the bottleneck features", bounds=BELOW_1)
    loss: str = opt("auto", "auto (ce_dice for masks, mse for images), or one of the names",
                    ("auto", *SEGMENTATION_LOSSES, *RECONSTRUCTION_LOSSES))
    dice_smooth: float = opt(1.0, "smooth term of the Dice loss", bounds=AT_LEAST_0)
    dice_weight: float = opt(1.0, "weight of the Dice term in ce_dice", bounds=AT_LEAST_0)
    augment: str | None = opt(None, "augmentation (masks follow every geometric op): a YAML file or inline "
                              "'rotation_range=10, horizontal_flip=true' (docs/augmentation.md)")
    crop: int | None = opt(None, "train on random CROP x CROP windows of the images (large images: a U-Net learns "
                                 "from parts, validation sees whole images, predict runs overlapping tiles of this "
                                 "size); default: whole images", bounds=IMAGE_SIDE)
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    # engine defaults that suit dense prediction
    epochs: int = override(15)
    batch_size: int = override(16)
    lr: float = override(6e-3)
    scheduler: str = override("cosine")
    optimizer: str = override("adamw")
    weight_decay: float = override(1e-4)
    monitor: str = opt("val_dice", "metric for early stopping, best.pt and the plateau schedule (val_loss "
                                   "for --target image)")

    @property
    def run_folder(self) -> str:
        """``<project>/<run_folder>/<name>``: reconstruction runs live beside ``dcv autoencoder``'s."""
        return "autoencoder" if self.target == "image" else "segment"


@dataclass
class AutoencoderConfig(SegmentConfig):
    """Autoencoder: reconstruct the input through a bottleneck (the segmentation options, other defaults)."""

    data: str = opt("fashion-mnist", "fashion-mnist, mnist, an image folder, or scenes")
    target: str = opt("image", "image: reconstruct the input; mask: segment", SEGMENT_TARGETS)
    model: str = opt("conv_autoencoder", "conv_autoencoder (no skips); a unet would copy its input through the skips")
    depth: int | None = opt(2, "max-pools in the encoder: 28x28 -> 7x7 at depth 2", bounds=Bounds(1, 8))
    base: int | None = opt(32, "channels of the first section, doubled at each depth", bounds=CHANNELS)
    epochs: int = override(10)
    batch_size: int = override(128)
    monitor: str = opt("val_loss", "metric for early stopping and best.pt")


def _floats(spec: str, name: str) -> tuple[float, ...]:
    why = _positive_numbers(spec)
    if why:
        raise ConfigError(f"--{name.replace('_', '-')} '{spec}': {why}")
    return tuple(float(v) for v in str(spec).split(",") if v.strip())


def _positive_numbers(spec: str) -> str | None:
    """The check of a comma-separated list of positive numbers (None: fine, else why not)."""
    try:
        vals = [float(v) for v in str(spec).split(",") if v.strip()]
    except ValueError:
        return "must be comma-separated numbers"
    if not vals or any(not v > 0 or v == float("inf") for v in vals):
        return "must be positive numbers"
    return None


@dataclass
class DetectConfig(TrainConfig, SceneDataConfig):
    """Detection: data, detector, proposals, training regions, post-processing."""

    data: str = opt("scenes", "scenes (FashionScenes: Fashion-MNIST items on textured backgrounds, 10 classes), "
                    "a COCO .json, a YOLO data .yaml, or a folder with Annotations/ (VOC), annotations.json or "
                    "data.yaml")
    test_data: str | None = opt(None, "annotations of a test split (same formats; default: the YOLO YAML's test "
                                      "entry, or none)")
    model: str = opt("fast_rcnn", "detector: sliding_window, rcnn, fast_rcnn, faster_rcnn, yolo_v1 or yolo "
                                  "(dcv models --task detect)")
    backbone: str = opt("cnn", "the registry classifier inside the region detectors (cnn, cnn_small, resnet20, "
                               "...); the YOLOs have their own")
    width: float | None = opt(None, "width multiplier of the backbone", bounds=WIDTH)
    crop_size: int = opt(40, "sliding_window/rcnn: side of the warped crops fed to the CNN", bounds=IMAGE_SIDE)
    roi: str = opt("align", "fast_rcnn, faster_rcnn: RoI Align (bilinear, no rounding: Mask R-CNN's, torchvision's "
                            "Faster R-CNN's) or RoI max pooling (the papers')", ROI_OPS)
    roi_size: int = opt(3, "fast_rcnn, faster_rcnn: side of the pooled grid", bounds=Bounds(1, 64))
    proposals: str = opt("auto", "region source: auto (the detector's own: windows for sliding_window, the RPN "
                                 "for faster_rcnn, none for the YOLOs, selective search otherwise)",
                         ("auto", *PROPOSAL_METHODS))
    ss_mode: str = opt("fast", "selective search mode", SELECTIVE_SEARCH_MODES)
    max_proposals: int = opt(2000, "at most this many selective-search proposals per image",
                            bounds=Bounds(1, 100_000))
    window_sizes: str = opt("32,44", "sliding windows: sides (pixels, at aspect ratio 1)", check=_positive_numbers)
    window_ratios: str = opt("0.6,1,1.6", "sliding windows: width/height ratios", check=_positive_numbers)
    window_stride: int = opt(8, "sliding windows: stride in pixels", bounds=Bounds(1, 8192))
    rois_per_image: int | None = opt(None, "training regions sampled per image (default: 64 for fast_rcnn; 16 for the "
                                           "crop classifiers: 128 regions per batch of 8, R-CNN's mini-batch; 0 for "
                                           "detectors that sample none)", bounds=AT_LEAST_0)
    fg_fraction: float = opt(0.25, "at most this share of them foreground", bounds=Bounds(0, 1, lo_open=True))
    fg_iou: float = opt(0.5, "a region is foreground at this IoU with a ground-truth box",
                         bounds=Bounds(0, 1, lo_open=True))
    bg_iou: float = opt(0.5, "and background below this IoU (in between: not sampled)", bounds=FRACTION)
    box_weight: float = opt(1.0, "weight of the box-regression term of the multi-task loss", bounds=AT_LEAST_0)
    hflip: bool = opt(True, "random horizontal flips (images, boxes and proposals together)")
    mosaic: float | None = opt(None, "probability of a mosaic (4 training images tiled, a random window kept; "
                                     "default 0.5 for yolo, 0 otherwise; detectors without proposals only)",
                                 bounds=FRACTION)
    affine: float | None = opt(None, "random affine: scale images and boxes by a factor in [1 - a, 1 + a] and shift "
                                     "them by up to 10% of the size (default 0.5 for yolo_n/yolo_s, 0 otherwise; "
                                     "detectors without proposals only)", bounds=BELOW_1)
    ema: float | None = opt(None, "exponential moving average of the weights (default 0.9998 for yolo_n/yolo_s, 0 "
                                  "otherwise; 0: off)", bounds=BELOW_1)
    score_thresh: float = opt(0.05, "drop detections scoring below this", bounds=FRACTION)
    nms_iou: float = opt(0.5, "per-class NMS: suppress boxes overlapping a better one above this IoU",
                           bounds=Bounds(0, 1, lo_open=True))
    top_k: int = opt(100, "keep at most this many detections per image", bounds=Bounds(1, 100_000))
    svm_c: float = opt(0.01, "rcnn: C of the linear SVMs", bounds=POSITIVE)
    svm_rounds: int = opt(3, "rcnn: hard-negative mining rounds", bounds=AT_LEAST_0)
    svm_images: int = opt(600, "rcnn: training images whose proposals feed the SVMs", bounds=AT_LEAST_1)
    bbox_reg: bool = opt(True, "rcnn: fit ridge box regressors on the CNN features")
    val_images: int = opt(200, "validation images detected each epoch for val_map50 (all but the crop "
                               "classifiers, which monitor region accuracy)", bounds=AT_LEAST_1)
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    epochs: int | None = opt(None, "passes over the training set (default: 16 for fast_rcnn and faster_rcnn, 8 for "
                                   "the crop classifiers, whose steps cost a CNN pass per region, 50 for the YOLOs, "
                                   "whose steps are cheap)", bounds=AT_LEAST_1)
    batch_size: int | None = opt(None, "images per training step (default 8; 16 for the YOLOs)",
                                   bounds=AT_LEAST_1)
    lr: float = override(2e-3)
    optimizer: str = override("adamw")
    weight_decay: float = override(1e-4)
    scheduler: str = override("cosine")
    monitor: str = opt("auto", "metric for early stopping and best.pt: auto = val_acc (region accuracy) for the "
                               "crop classifiers, val_map50 for the others")

    def check(self, where: str) -> None:
        """What no single field can say: a region can be foreground or background, not both."""
        if self.bg_iou > self.fg_iou:
            raise ConfigError(f"{where}: bg_iou {self.bg_iou:g} is above fg_iou {self.fg_iou:g}; a region below bg_iou "
                              "is background and one at fg_iou foreground, so bg_iou must be <= fg_iou")

    def post(self) -> Any:
        """The run's :class:`~dcvkit.models.detect.postprocess.PostProcess`."""
        from dcvkit.models.detect.postprocess import PostProcess

        return PostProcess(score_thresh=self.score_thresh, nms_iou=self.nms_iou, top_k=self.top_k)

    def windows(self) -> Any:
        """The run's :class:`~dcvkit.models.detect.proposals.SlidingWindows`."""
        from dcvkit.models.detect.proposals import SlidingWindows

        return SlidingWindows(sizes=tuple(int(s) for s in _floats(self.window_sizes, "window_sizes")),
                              ratios=_floats(self.window_ratios, "window_ratios"), stride=self.window_stride)


@dataclass
class GenerateConfig(TrainConfig, ImageDataConfig):
    """Generative model: VAE (KL annealing) or GAN options, and the offline metrics."""

    img_size: int | None = opt(None, "size to generate at (square): folder images are resized when loaded, named "
                               "datasets (28x28) on the fly; e.g. 64 for the 64x64 DCGAN", bounds=IMAGE_SIDE)
    model: str = opt("vae", "vae, cvae (class-conditional) or dcgan (`dcv models --task generate`)")
    latent_dim: int | None = opt(None, "latent dimensions (default: 20 for the VAEs, 100 for dcgan; 2 gives the "
                                 "VAE's 2-D latent grid)", bounds=Bounds(1, 4096))
    arch: str | None = opt(None, "VAE encoder/decoder: conv (default) or mlp (flattened pixels -> --hidden)",
                           VAE_ARCHS)
    width: int | None = opt(None, "channels of the full-resolution layer, doubled at each halving (default 32)",
                             bounds=CHANNELS)
    hidden: int | None = opt(None, "VAE hidden layer between features and latent (default 256)",
                              bounds=Bounds(1, 65536))
    # VAE
    reconstruction: str = opt("bce", "VAE reconstruction term: bce (Bernoulli log-likelihood, nats) or mse "
                              "(the course's ||x - d(z)||^2)", VAE_RECONSTRUCTIONS)
    beta: float = opt(1.0, "weight of the KL term once annealed (beta-VAE when > 1)", bounds=AT_LEAST_0)
    kl_schedule: str = opt("linear", "KL annealing: none (beta throughout), linear or sigmoid (0 -> beta over "
                           "--kl-ratio of training), cyclical (--kl-cycles cycles, each ramping over --kl-ratio)",
                           KL_SCHEDULES)
    kl_ratio: float = opt(0.5, "fraction of training (cyclical: of each cycle) spent raising the KL weight",
                           bounds=Bounds(0, 1, lo_open=True))
    kl_cycles: int = opt(4, "cyclical annealing: number of cycles (Fu et al. 2019: 4)", bounds=AT_LEAST_1)
    nll_samples: int = opt(64, "importance samples per test image for the NLL estimate", bounds=AT_LEAST_1)
    nll_images: int = opt(2000, "test images for the NLL estimate (0: all)", bounds=AT_LEAST_0)
    # GAN
    gan_loss: str = opt("non_saturating", "generator/discriminator losses", GAN_LOSSES)
    d_steps: int = opt(1, "discriminator steps per generator step", bounds=AT_LEAST_1)
    label_smoothing: float = opt(0.0, "one-sided label smoothing: real targets 1 - this (e.g. 0.1)",
                                  bounds=BELOW_1)
    spectral_norm: bool | None = opt(None, "spectral norm on the discriminator's layers instead of batch norm")
    d_lr: float | None = opt(None, "discriminator learning rate (default: --lr)", bounds=POSITIVE)
    beta1: float = opt(0.5, "Adam's beta1 (DCGAN: 0.5; the VAEs use 0.9)", bounds=BELOW_1)
    # metrics
    fid_classifier: str = opt("auto", "classifier whose features give FID and class coverage: a dcv classify run, "
                              "'auto' (train a cnn on the training data once, kept in "
                              "<project>/generate/fid-classifier-<data>) or 'none'")
    fid_samples: int = opt(10000, "generated images for the final FID and class coverage", bounds=AT_LEAST_1)
    fid_epoch_samples: int = opt(2000, "dcgan: generated images for the per-epoch FID against the validation split",
                                bounds=AT_LEAST_1)
    samples_every: int = opt(1, "write a grid of samples from fixed noise every N epochs (and to TensorBoard)",
                            bounds=AT_LEAST_0)
    test: bool = opt(True, "evaluate best.pt on the test split at the end")
    # engine defaults that suit generative models
    epochs: int | None = opt(None, "passes over the training set (default: 20 for the VAEs, 15 for dcgan)",
                               bounds=AT_LEAST_1)
    lr: float | None = opt(None, "learning rate (default: 1e-3 for the VAEs, 2e-4 for dcgan)", bounds=POSITIVE)
    optimizer: str = opt("adam", "optimizer (the GAN always uses Adam with --beta1)", OPTIMIZERS)
    weight_decay: float = override(0.0)
    scheduler: str = override("none")
    monitor: str = opt("auto", "metric for best.pt and early stopping (default: val_loss, the -ELBO, for the "
                       "VAEs; val_fid for dcgan)")
    histogram_freq: int = override(0)


@dataclass
class PoseConfig(TrainConfig, DataConfig):
    """Pose estimation: data, model, augmentation, post-processing."""

    data: str = opt("figures", "figures (articulated figures on COCO's 17 keypoints, textured with Fashion-MNIST "
                               "items; dcv data figures), a COCO keypoints .json or a YOLO-pose data .yaml")
    test_data: str | None = opt(None, "a test split in the same formats (default: the YOLO YAML's test entry)")
    figures: int = opt(4000, "figures: training images (the validation split comes out of them)", bounds=AT_LEAST_1)
    test_figures: int = opt(500, "figures: test images (from Fashion-MNIST's test items)", bounds=AT_LEAST_0)
    figure_seed: int = opt(0, "figures: seed of the images (kept apart from --seed)", bounds=Bounds(0, 2**32 - 1))
    model: str = opt("yolo_pose", "pose model from `dcv models --task pose`")
    width: float | None = opt(None, "width multiplier of the model", bounds=WIDTH)
    hflip: bool = opt(True, "random horizontal flips (keypoints mirrored and left/right swapped by the flip index)")
    mosaic: float | None = opt(None, "probability of a mosaic (4 training images tiled, a random window kept; "
                                     "keypoints move with their tiles; default: 0.5 for yolo_pose, 0 otherwise)",
                               bounds=FRACTION)
    affine: float | None = opt(None, "random affine: scale images and keypoints by a factor in [1 - a, 1 + a] and "
                                     "shift them by up to 10% of the size (default: the model's own, 0)",
                               bounds=BELOW_1)
    score_thresh: float = opt(0.1, "drop people scoring below this", bounds=FRACTION)
    nms_iou: float = opt(0.5, "suppress a person's box overlapping a better one above this IoU",
                         bounds=Bounds(0, 1, lo_open=True))
    val_images: int = opt(200, "validation images scored each epoch for val_ap", bounds=AT_LEAST_1)
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    boxes: str = opt("gt", "top-down models (heatmap): the people's boxes for validation and the test "
                           "results: gt (the ground truth's: the keypoint estimate alone) or a pose run directory "
                           "whose people are used (the whole pipeline)")
    epochs: int | None = opt(None, "passes over the training set (default: the model's own: 40 for yolo_pose, "
                                   "12 for heatmap and keypoint_rcnn)", bounds=AT_LEAST_1)
    batch_size: int | None = opt(None, "images per training step (default: the model's own, 16)",
                                 bounds=AT_LEAST_1)
    lr: float = override(2e-3)
    optimizer: str = override("adamw")
    weight_decay: float = override(1e-4)
    scheduler: str = override("cosine")
    monitor: str = opt("val_ap", "metric for early stopping and best.pt (OKS AP on validation images)")


@dataclass
class SceneGraphConfig(TrainConfig, DataConfig):
    """Scene-graph prediction: data, model, the detector of SGDet."""

    data: str = opt("scenes", "scenes (graph scenes: FashionScenes with a scene graph each, 11 predicates; dcv data "
                              "scenegraphs) or a Visual-Genome-like scene_graphs.json (any classes and predicates)")
    test_data: str | None = opt(None, "a test split in the same format (default with --data scenes: test scenes from "
                                      "Fashion-MNIST's test items)")
    scenes: int = opt(3000, "scenes: training images (the validation split comes out of them)", bounds=AT_LEAST_1)
    test_scenes: int = opt(500, "scenes: test images (from Fashion-MNIST's test items)", bounds=AT_LEAST_0)
    scene_seed: int = opt(0, "scenes: seed of the images (kept apart from --seed)", bounds=Bounds(0, 2**32 - 1))
    model: str = opt("visual", "scene-graph model from `dcv models --task scenegraph`: frequency (the classes' "
                               "predicate prior), geometry (+ the boxes), visual (+ the pixels)")
    width: float | None = opt(None, "width multiplier of the backbone", bounds=WIDTH)
    hflip: bool = opt(True, "random horizontal flips (boxes mirrored; predicates naming left and right swapped)")
    vflip: bool | None = opt(None, "random vertical flips (predicates naming above and below swapped; default: on for "
                                   "the generated scenes, which have no up or down, off for a file, where 'on' or "
                                   "'under' would turn false)")
    detector: str | None = opt(None, "a dcv detect run whose boxes and classes feed SGDet in the test results "
                                     "(default: PredCls and SGCls only)")
    val_images: int = opt(200, "validation images scored each epoch for val_r50 and val_mr50 (PredCls)",
                          bounds=AT_LEAST_1)
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    epochs: int | None = opt(None, "passes over the training set (default: the model's own, 12)", bounds=AT_LEAST_1)
    batch_size: int | None = opt(None, "images per training step (default: the model's own, 32)", bounds=AT_LEAST_1)
    lr: float = override(2e-3)
    optimizer: str = override("adamw")
    weight_decay: float = override(1e-4)
    scheduler: str = override("cosine")
    monitor: str = opt("val_mr50", "metric for early stopping and best.pt (PredCls mean recall@50 on validation "
                                   "images; ties broken by validation loss)")


@dataclass
class Detect3DConfig(TrainConfig):
    """3-D object detection from LiDAR point clouds: data, model, decoding."""

    data: str = opt("scenes", "scenes (simulated LiDAR scenes: cars, pedestrians, cyclists; dcv data lidar writes "
                              "them) or a KITTI-layout folder (velodyne/, calib/, label_2/)")
    test_data: str | None = opt(None, "a KITTI-layout folder to test on (default with --data scenes: scenes of the "
                                      "next scene seed)")
    val_split: float = opt(0.1, "fraction of training frames held out for validation", bounds=BELOW_1)
    limit: int | None = opt(None, "use a random subset of this many training frames", bounds=AT_LEAST_1)
    frames: int = opt(3000, "scenes: training frames (the validation split comes out of them)", bounds=AT_LEAST_1)
    test_frames: int = opt(500, "scenes: test frames (scene seed + 1)", bounds=AT_LEAST_0)
    scene_seed: int = opt(0, "scenes: seed of the scene set (kept apart from --seed)", bounds=Bounds(0, 2**32 - 1))
    model: str = opt("pointpillars", "3-D detector from `dcv models --task detect3d`")
    width: float | None = opt(None, "width multiplier of the model", bounds=WIDTH)
    augment: bool = opt(True, "global augmentation of each cloud with its boxes: a mirror across the x axis, a "
                              "rotation of up to 22.5 degrees about z, a scale of 0.95-1.05 (PointPillars')")
    score_thresh: float = opt(0.05, "drop detections scoring below this", bounds=FRACTION)
    nms_iou: float = opt(0.1, "suppress a detection overlapping a better one of its class above this BEV IoU",
                         bounds=Bounds(0, 1, lo_open=True))
    val_frames: int = opt(200, "validation frames scored each epoch for val_ap3d", bounds=AT_LEAST_1)
    test: bool = opt(True, "evaluate best.pt on the test split at the end (when the data has one)")
    epochs: int | None = opt(None, "passes over the training set (default: the model's own, 16)", bounds=AT_LEAST_1)
    batch_size: int | None = opt(None, "frames per training step (default: the model's own, 8)", bounds=AT_LEAST_1)
    lr: float = override(3e-3)
    optimizer: str = override("adamw")
    weight_decay: float = override(1e-2)
    scheduler: str = override("onecycle")
    monitor: str = opt("val_ap3d", "metric for early stopping and best.pt (3-D AP|R40, moderate, mean over the "
                                   "classes, on validation frames)")


@dataclass
class TrackConfig(RunConfig):
    """Tracking: which tracker, which detections it sees, what is written."""

    tracker: str = opt("bytetrack", "tracker: iou (greedy IoU, the baseline), sort (Kalman + Hungarian), bytetrack "
                                    "(+ a pass for low-score detections), appearance (+ the detector's features, "
                                    "DeepSORT-like); all: every one (dcv track val)", (*TRACKERS, "all"))
    score_thresh: float = opt(0.1, "the detector's threshold: detections below it are not given to the tracker "
                                   "(bytetrack and appearance match those below --track-thresh in their second "
                                   "pass)", bounds=FRACTION)
    track_thresh: float = opt(0.5, "confident detections: iou and sort track only these; bytetrack and appearance "
                                   "match them first and start new tracks from them", bounds=FRACTION)
    agnostic_nms: bool = opt(True, "suppress overlapping detections across classes too (a tracker links boxes of "
                                   "any class: an item also found as another class would start a second track)")
    buffer: int = opt(30, "bytetrack, appearance: frames a lost track is kept to be found again",
                      bounds=Bounds(0, 100_000))
    img_size: int | None = opt(None, "letterbox frames to this square size, rounded up to a multiple of 32 (default: "
                                     "the detector's training size)", bounds=IMAGE_SIDE)
    trail: int = opt(20, "frames of trail drawn behind each track in the video (0: none)", bounds=Bounds(0, 10_000))
    video: bool = opt(True, "write the annotated video (tracks.mp4)")
    device: str = opt("auto", "where the detector runs: auto (CUDA when available), cpu or cuda", DEVICES)
    progress: bool = opt(True, "show a progress bar")
    name: str = override("exp")


__all__ = ["ClassifyConfig", "SegmentConfig", "AutoencoderConfig", "DetectConfig", "GenerateConfig", "PoseConfig",
           "SceneGraphConfig", "Detect3DConfig", "TrackConfig"]
