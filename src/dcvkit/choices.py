"""The names a user may choose, one tuple per option: optimizers, schedules, losses, proposal methods...

Each tuple has one owner, here: the module that implements the names imports its tuple from this file (and
raises for a name outside it), and the configs offer it as the option's choices. The file imports nothing,
so ``dcv <task> train --help`` lists every choice without importing torch.
"""

DEVICES = ("auto", "cpu", "cuda")

# engine (engine/optim.py)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "exponential", "cosine", "onecycle", "plateau")

# classification (losses/classification.py, models/classify/base.py)
CLASSIFICATION_LOSSES = ("cross_entropy", "focal")
STEMS = ("auto", "small", "imagenet")

# segmentation (losses/segmentation.py, models/segment/unet.py)
SEGMENT_TARGETS = ("mask", "image")  # a class per pixel, or the input itself (autoencoder)
SEGMENTATION_LOSSES = ("ce_dice", "ce", "dice")
RECONSTRUCTION_LOSSES = ("mse", "bce")
UPSAMPLING = ("nearest", "bilinear", "transpose")

# detection (models/detect/proposals.py, models/detect/roi.py)
PROPOSAL_METHODS = ("selective_search", "sliding_window")  # computed outside the network
SELECTIVE_SEARCH_MODES = ("fast", "quality")
ROI_OPS = ("pool", "align")
COCO_BACKENDS = ("faster_coco_eval", "pycocotools")

# tracking (models/track/trackers.py)
TRACKERS = ("iou", "sort", "bytetrack", "appearance")

# generation (losses/generative.py, models/generate/vae.py, explain/latent.py)
KL_SCHEDULES = ("none", "linear", "sigmoid", "cyclical")
GAN_LOSSES = ("minimax", "non_saturating", "hinge", "least_squares")
VAE_RECONSTRUCTIONS = ("mse", "bce")
VAE_ARCHS = ("conv", "mlp")
INTERPOLATIONS = ("slerp", "linear")

# explanation (explain/saliency.py)
SALIENCY_METHODS = ("perturbation", "gradient", "smoothgrad", "occlusion", "gradcam")
# what a saliency map differentiates: log p(target) (never saturates), the raw logit, or p itself (the course's)
SALIENCY_SCORES = ("logprob", "logit", "prob")

# tuning (tune/study.py)
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
SPACE_TYPES = ("float", "int", "categorical")

# data (data/detection.py, data/scenes.py)
ANNOTATION_FORMATS = ("coco", "yolo", "voc")
SCENE_FORMATS = ("masks", *ANNOTATION_FORMATS)

# export (export.py)
EXPORT_FORMATS = ("onnx",)
