"""``dcv``: deep computer vision from the command line. ``dcv <task> <mode> [options]``."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import typing
import warnings

from dcvkit.errors import DcvError

DESCRIPTION = """\
dcvkit: train, evaluate and compare deep computer-vision models.

  dcv quickstart                     CNN vs classical ML on Fashion-MNIST, with an HTML report
  dcv classify train --model cnn     train a classifier (dcv classify train --help for every option)
  dcv classify train --model resnet18 --pretrained RUN_OR_FILE --freeze-backbone   transfer learning
  dcv classify val RUN               test-set accuracy, per-class report and confusion matrix
  dcv classify predict RUN IMG...    top-k classes with probabilities
  dcv classify train --augment aug.yaml   Keras ImageDataGenerator-style augmentation, batched
  dcv classify train --devices 4     DistributedDataParallel on 4 GPUs (or CPU processes); --num-nodes
  dcv classify train --resume RUN    continue exactly where Ctrl-C, SIGTERM or --max-time left a run
  dcv segment train --model unet     semantic segmentation on FashionScenes (or images/ + masks/);
                                     --model conv_autoencoder | unet_course, --encoder resnet18
  dcv segment val RUN                per-class Dice and IoU;  dcv segment predict RUN IMG  masks + overlays
  dcv autoencoder train              convolutional autoencoder reconstructing Fashion-MNIST
  dcv detect train --model yolo      object detection on FashionScenes (or COCO / YOLO / VOC data);
                                     --model sliding_window | rcnn | fast_rcnn | faster_rcnn | yolo_v1 | yolo
  dcv detect val RUN                 COCO mAP@[.5:.95], mAP@0.5, per-class AP, seconds per image
  dcv detect predict RUN IMG         labelled boxes drawn on the image (any size, letterboxed) + COCO JSON
  dcv track RUN VIDEO --tracker bytetrack   multi-object tracking on a detector run: annotated video,
                                     MOTChallenge results; --tracker iou | sort | bytetrack | appearance
  dcv track val RUN --data CLIPS     MOTA, IDF1, HOTA of every tracker on the same detections
  dcv pose train                     keypoints of articulated figures (or COCO keypoints / YOLO-pose data), OKS AP
  dcv scenegraph train               scene graphs (subject-predicate-object) on graph scenes or VG-like JSON;
                                     --model frequency | geometry | visual; --detector RUN for SGDet;
                                     PredCls / SGCls / SGDet: R@K, ngR@K, mR@K, zero-shot R@K
  dcv detect3d train                 3-D boxes from LiDAR (PointPillars, CPU) on simulated scenes or a
                                     KITTI-layout folder; dcv detect3d val RUN: KITTI AP 2-D/BEV/3-D, AOS
  dcv generate train --model vae     VAE with KL annealing (--kl-schedule linear|cyclical), cvae, dcgan
  dcv generate eval RUN              -ELBO, NLL estimate, FID-FMNIST, class coverage of samples
  dcv generate sample|reconstruct|interpolate|arithmetic|traverse RUN   the latent space as PNGs
  dcv export RUN --format onnx       a classifier, YOLO or generator as ONNX, checked against PyTorch
  dcv serve RUN [RUN ...]            the runs as a web page and a JSON API on 127.0.0.1:8000 (dynamic
                                     batching, --backend torch|onnx); dcv bench serve: requests/s, p99
  dcv data scenes --out DIR --format coco   FashionScenes as masks | coco | yolo | voc
  dcv data clips --out DIR           moving FashionScenes with true ids (MOTChallenge layout, MP4)
  dcv data scenegraphs --out DIR     graph scenes: 11 predicates (geometric, depth, appearance), VG-like JSON
  dcv data lidar --out DIR           simulated LiDAR frames in the KITTI layout (--stereo: a real one)
  dcv data convert SRC --to yolo --out DIR  COCO <-> YOLO <-> VOC, images copied along
  dcv augment preview --config aug.yaml IMG   an image and its augmented versions, boxes/masks drawn
  dcv explain saliency RUN IMG --method all   saliency maps: perturbation (exact, fast), gradient,
                                     SmoothGrad, occlusion, Grad-CAM; PNG overlays + .npy maps
  dcv explain features RUN IMG       feature-map grids per layer and first-layer filters
  dcv baseline --models rf,lr        classical baselines (scikit-learn) on the same split
  dcv experiment transfer            the course's claims measured: dropout, augmentation,
                                     lr-annealing, plain-vs-residual, transfer, kl-annealing, gan-loss
  dcv tune --fixed 'epochs=3'        Optuna over any task's options: YAML space, pruning, shared studies
  dcv bench classify                 training throughput: dcvkit vs bare PyTorch vs PIL/DataLoader
  dcv bench architectures            AlexNet, VGG, GoogLeNet, ResNet... under one time budget
  dcv bench augment                  batched augmentation vs torchvision v2 per sample vs Keras/scipy
  dcv bench saliency                 perturbation saliency: naive loop vs batched/incremental vs captum
  dcv bench segment                  unet vs skip-less autoencoder vs smp.Unet under one time budget
  dcv bench proposals                selective-search recall at IoU 0.5/0.7 vs proposals, seconds/image
  dcv bench detect                   the detection lineage table: mAP, seconds per image, speed-ups vs R-CNN
  dcv bench track                    trackers side by side on one detector and on noisy true boxes
  dcv bench scenegraph               frequency vs geometry vs visual in PredCls, SGCls, SGDet: R@K, mR@K
  dcv bench generative               dcvkit's VAE vs the PyTorch examples' MLP VAE: -ELBO, images/s
  dcv bench startup                  how fast dcv answers (it never imports torch to parse)
  dcv models                         the model registry

Options can also come from a YAML file (--config file.yaml); flags override it. Every run writes a
fresh directory runs/<task>/<name> (exp, exp2, ...) with its resolved config.yaml.
Errors print one line and exit with code 2 (3: training diverged; 130/143: interrupted, resumable).
docs/errors.md lists every bad-input case and what it prints."""


class Parser(argparse.ArgumentParser):
    """argparse with dcvkit's error style: one line, ``error: ...``, exit code 2 (no usage block). Options
    are never abbreviated (``--epoch`` is not ``--epochs``), and a typo is matched against the options of the
    subcommand typed, whose ``--help`` the hint names."""

    _deepest: "Parser | None" = None  # the last (sub)parser that started parsing: the subcommand typed

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        Parser._deepest = self  # subparsers parse after their parent: the last one is the command's own
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> "typing.NoReturn":
        own = Parser._deepest if message.startswith("unrecognized arguments") and Parser._deepest else self
        hint = f"; see {own.prog} --help"
        if "invalid choice: '" in message:  # a typo'd command or mode
            typed = message.split("invalid choice: '", 1)[1].split("'", 1)[0]
            choices = [c.strip(" '") for c in message.rsplit("(choose from", 1)[-1].rstrip(")").split(",")]
            close = difflib.get_close_matches(typed, choices, n=1)
            hint = f" (did you mean {close[0]}?)" + hint if close else hint
        if message.startswith("unrecognized arguments"):
            unknown = [a.split("=")[0] for a in message.split(":", 1)[1].split() if a.startswith("--")]
            options = [o for o in own._option_string_actions if o.startswith("--")]
            close = difflib.get_close_matches(unknown[0], options, n=1) if unknown else []
            hint = f" (did you mean {close[0]}?)" + hint if close else hint
        print(f"error: {message}{hint}", file=sys.stderr)
        sys.exit(2)


#: the tool commands: name -> (module under dcvkit.cli, its line in ``dcv --help``); the task commands come
#: from the task table (:data:`dcvkit.tasks.TASKS`)
TOOLS = {
    "track": ("track", "multi-object tracking by detection: predict (video, frames, MOT sequence) | val"),
    "augment": ("augment", "data augmentation: preview a config on your images"),
    "explain": ("explain", "saliency maps and feature maps of a trained classifier"),
    "data": ("data", "datasets: write FashionScenes (masks, COCO, YOLO, VOC); convert between formats"),
    "baseline": ("baseline", "classical ML baselines (scikit-learn)"),
    "experiment": ("experiment", "the course's training claims as reproducible experiments"),
    "tune": ("tune", "hyperparameter optimisation (Optuna): search space in YAML, pruning, shared studies"),
    "bench": ("bench", "benchmarks (ratios measured side by side in one process)"),
    "export": ("export", "export a trained classifier, YOLO or generator to ONNX (checked with onnxruntime)"),
    "serve": ("serve", "trained runs as a web page and a JSON API (FastAPI; dynamic batching; torch or onnx)"),
    "models": ("models", "list registered models"),
}


def commands() -> dict[str, tuple[str, str]]:
    """Every command, in ``dcv --help``'s order: name -> (CLI module, one-line help)."""
    from dcvkit.tasks import TASKS

    quickstart = {"quickstart": ("quickstart", "train the CNN and the classical baselines; write an HTML report")}
    return {**quickstart, **{t.name: (t.cli, t.summary) for t in TASKS.values()}, **TOOLS}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``dcv`` parser. Only the command named in ``argv`` gets its module imported and its options built;
    the others are listed with their one-line help (so ``dcv --help`` imports no command at all). Without
    ``argv`` every command is built."""
    import importlib

    from dcvkit import __version__

    parser = Parser(prog="dcv", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dcvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    table = commands()
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name, (module, summary) in table.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if chosen is None or name == chosen:
            importlib.import_module(f"dcvkit.cli.{module}").build(p, name)
    return parser


_FORMAT_WARNING = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """dcvkit's own warnings (a small split, a degenerate saliency map) as one ``warning:`` line; a library's
    as Python formats them."""
    if "dcvkit" in str(filename):
        return f"warning: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


def with_default_mode(argv: list[str]) -> list[str]:
    """``dcv track RUN SOURCE`` -> ``dcv track predict RUN SOURCE``: a command whose CLI module names a
    ``DEFAULT_MODE`` gets it when the word after the command is neither one of its ``MODES`` nor an option."""
    import importlib

    k = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if k is None or k + 1 >= len(argv) or argv[k] not in commands():
        return argv
    module = importlib.import_module(f"dcvkit.cli.{commands()[argv[k]][0]}")
    default, modes = getattr(module, "DEFAULT_MODE", None), getattr(module, "MODES", ())
    if default is None or argv[k + 1] in modes or argv[k + 1].startswith("-"):
        return argv
    return [*argv[:k + 1], default, *argv[k + 1:]]


def main(argv: list[str] | None = None) -> int:
    argv = with_default_mode(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # what `--devices N` runs again in each training process
    warnings.filterwarnings("ignore", module="tensorboard")
    warnings.formatwarning = _one_line_warning
    rank = _quiet_unless_rank_zero()
    try:
        return int(args.func(args) or 0)
    except DcvError as e:
        message = " ".join(str(e).split())
        if not _handed_to_launcher(message, e.exit_code):
            print(f"error: {message}" if rank == 0 else f"error (rank {rank}): {message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if "WORLD_SIZE" in os.environ:  # a training process: leave the process group cleanly
            from dcvkit.engine.distributed import shutdown

            shutdown()


def _handed_to_launcher(message: str, exit_code: int) -> bool:
    """A worker of ``--devices N`` leaves its error to the launcher, which prints it once."""
    if "WORLD_SIZE" not in os.environ:  # not a training process: no need to import the engine (and torch)
        return False
    from dcvkit.engine.distributed import report_error

    return report_error(message, exit_code)


def _quiet_unless_rank_zero() -> int:
    """In distributed training (torchrun sets RANK) only rank 0 prints; the others keep their errors."""
    if "WORLD_SIZE" not in os.environ:
        return 0
    from dcvkit.engine.distributed import world

    rank = world().rank
    if rank != 0:
        from dcvkit.cli.output import err
        from dcvkit.engine.loop import console

        sys.stdout = open(os.devnull, "w")
        console.quiet = err.quiet = True
    return rank


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
