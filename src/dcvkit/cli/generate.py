"""``dcv generate train|eval|sample|reconstruct|interpolate|arithmetic|traverse``."""

from __future__ import annotations

import argparse

from dcvkit.choices import INTERPOLATIONS
from dcvkit.cli.common import RAW, add_device, add_evaluation, add_out, add_seed, add_train, add_weights, fit_line
from dcvkit.tasks import get_task


def _run_args(p: argparse.ArgumentParser, out_default: str) -> None:
    add_weights(p, "run directory or checkpoint (.pt) of dcv generate train")
    add_out(p, f"folder for the PNGs (default: <run>/{out_default})")
    add_seed(p)
    add_device(p)


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.description = ("Variational autoencoders (vae, cvae) with KL annealing and the DCGAN: train, evaluate offline "
                     "(-ELBO, NLL estimate, FID-FMNIST, class coverage), and use the latent space (samples, "
                     "reconstructions, interpolation, arithmetic, traversals). See docs/generative.md.")
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    add_train(modes, get_task("generate"), "train a vae, cvae or dcgan", report=report_train, description=(
        "Train a generative model on Fashion-MNIST (default), MNIST or an image folder. VAEs minimise the negative "
        "ELBO, reconstruction + w(t) KL, with the KL weight w annealed per step (--kl-schedule none|linear|sigmoid|"
        "cyclical, --beta); dcgan alternates discriminator and generator steps (--gan-loss minimax|non_saturating|"
        "hinge|least_squares, --d-steps, --label-smoothing, --spectral-norm). FID-FMNIST and class coverage use a "
        "dcvkit classifier (--fid-classifier; 'auto' trains a cnn once). Writes runs/generate/<name>: config.yaml, "
        "best.pt, last.pt, metrics.csv, steps.csv (KL weight / gradient norms per step), samples/epoch_NNN.png "
        "(fixed noise), tensorboard/ (scalars and sample grids), curves.png, results.json, samples.png, "
        "coverage.png, reconstructions.png (VAEs).\n"
        "examples:\n  dcv generate train                                   # vae, linear KL annealing\n"
        "  dcv generate train --model cvae                      # conditioned on the class\n"
        "  dcv generate train --model vae --latent-dim 2        # a 2-D latent you can draw\n"
        "  dcv generate train --model vae --kl-schedule cyclical --kl-cycles 4 --kl-ratio 0.5\n"
        "  dcv generate train --model dcgan                     # 28x28 DCGAN, non-saturating loss\n"
        "  dcv generate train --model dcgan --img-size 64 --width 32 --spectral-norm"))

    e = modes.add_parser("eval", help="-ELBO, NLL estimate, FID-FMNIST and class coverage of a run",
                         formatter_class=RAW, description=(
        "The offline metrics on a split (default: test): VAEs: negative ELBO (nats per image), its reconstruction "
        "and KL terms, an importance-sampled NLL estimate, active latent units; all models: FID-FMNIST (the Fréchet "
        "distance on a dcvkit classifier's features: not comparable to Inception FID) of generated vs real images, "
        "the same for an untrained model (the floor), and the class histogram of samples (mode coverage).\n"
        "example: dcv generate eval runs/generate/exp --samples 10000 --out eval/"))
    add_evaluation(e, "folder for results.json, samples.png, coverage.png")
    e.add_argument("--samples", type=int, help="generated images for FID and coverage (default: the run's)")
    e.add_argument("--nll-samples", type=int, help="importance samples per image (default: the run's, 64)")
    e.add_argument("--nll-images", type=int, help="images for the NLL estimate (0: all; default: the run's)")
    e.add_argument("--fid-classifier", help="a dcv classify run to judge with (default: the run's)")
    e.set_defaults(func=cmd_eval)

    s = modes.add_parser("sample", help="a grid of samples (per class or a class mix for cvae)", formatter_class=RAW,
                         description="samples.png: draws from the prior through the decoder/generator. A cvae run: "
                                     "the same 8 latent codes in one row per class (--classes), or a mix of classes "
                                     "(--mix 'Sneaker=0.5,Sandal=0.5').\n"
                                     "example: dcv generate sample runs/generate/exp2 --mix Sneaker=0.5,Sandal=0.5")
    _run_args(s, "latent")
    s.add_argument("-n", type=int, default=64, help="samples (default 64)")
    s.add_argument("--classes", help="cvae: classes to draw, one row each (names or indices)")
    s.add_argument("--mix", help="cvae: class weights, e.g. Sneaker=0.5,Sandal=0.5")
    s.set_defaults(func=cmd_latent, tool="sample")

    r = modes.add_parser("reconstruct", help="inputs above their reconstructions (VAEs)", formatter_class=RAW,
                         description="reconstructions.png: test images (or --images: test indices or files) and "
                                     "their reconstructions from the posterior means.\n"
                                     "example: dcv generate reconstruct runs/generate/exp -n 12")
    _run_args(r, "latent")
    r.add_argument("-n", type=int, default=16, help="test images (default 16)")
    r.add_argument("--images", nargs="*", default=(), help="test-set indices or image files")
    r.set_defaults(func=cmd_latent, tool="reconstruct")

    i = modes.add_parser("interpolate", help="linear / spherical paths between latent points", formatter_class=RAW,
                         description="interpolate.png: rows from one latent point to another: --a/--b two images "
                                     "(VAEs: test indices or files) or random prior points (--pairs rows). A cvae with "
                                     "--classes A,B also writes class_interpolation.png: the label going from A to B "
                                     "(0.5/0.5 halfway) at fixed latent codes.\n"
                                     "examples:\n  dcv generate interpolate runs/generate/exp --a 0 --b 1 --method both\n"
                                     "  dcv generate interpolate runs/generate/exp2 --classes Sneaker,Sandal")
    _run_args(i, "latent")
    i.add_argument("--a", help="start image: test-set index or image file (VAEs)")
    i.add_argument("--b", help="end image")
    i.add_argument("--steps", type=int, default=10, help="images per row (default 10)")
    i.add_argument("--method", default="slerp", choices=(*INTERPOLATIONS, "both"), help="default: slerp")
    i.add_argument("--pairs", type=int, default=4, help="rows of random pairs (default 4)")
    i.add_argument("--classes", help="cvae: interpolate the label between two classes, e.g. Sneaker,Sandal")
    i.set_defaults(func=cmd_latent, tool="interpolate")

    a = modes.add_parser("arithmetic", help="mean z(A) - mean z(B) + z(C)", formatter_class=RAW,
                         description="arithmetic.png: z(c) - mean z(minus) + mean z(plus) for items c of --to. VAEs "
                                     "average the posterior means of --group test images per class (--to may also be "
                                     "test indices or image files); GANs average the latent codes of samples that the "
                                     "run's classifier puts in each class.\n"
                                     "example: dcv generate arithmetic runs/generate/exp --plus Sneaker --minus Sandal "
                                     "--to Sandal")
    _run_args(a, "latent")
    a.add_argument("--plus", required=True, help="class whose mean code is added")
    a.add_argument("--minus", required=True, help="class whose mean code is subtracted")
    a.add_argument("--to", required=True, help="class (or VAEs: comma-separated test indices / image files) to move")
    a.add_argument("-n", type=int, default=8, help="items of --to (default 8)")
    a.add_argument("--group", type=int, default=64, help="codes averaged per class (default 64)")
    a.add_argument("--fid-classifier", help="GANs: classifier run that labels samples (default: the run's)")
    a.set_defaults(func=cmd_latent, tool="arithmetic")

    v = modes.add_parser("traverse", help="one latent dimension at a time; the 2-D latent grid", formatter_class=RAW,
                         description="traverse.png: each row moves one latent dimension from -r to r around a base "
                                     "point (--base: a test index or file; else 0). VAEs: the 10 dimensions with the "
                                     "largest KL first. A 2-D latent also gives latent_grid.png.\n"
                                     "example: dcv generate traverse runs/generate/exp --base 0 --extent 3")
    _run_args(v, "latent")
    v.add_argument("--dims", help="dimensions to move, e.g. 0,3,5 (default: the most informative)")
    v.add_argument("--extent", type=float, default=3.0, help="r: values from -r to r (default 3)")
    v.add_argument("--steps", type=int, default=9, help="images per row (default 9)")
    v.add_argument("--base", help="base point: a test index or image file (VAEs)")
    v.add_argument("--grid", type=int, default=15, help="2-D latent: grid x grid images (default 15)")
    v.set_defaults(func=cmd_latent, tool="traverse")


def report_train(result) -> None:
    from dcvkit.cli.output import out

    out.print(fit_line(result))
    if result.test:
        print_summary(result.test)
    out.print(f"run directory: {result.run_dir}")


def print_summary(r: dict) -> None:
    from dcvkit.cli.output import print_table

    rows = []
    if "neg_elbo" in r:
        rows += [("negative ELBO (nats/image)", f"{r['neg_elbo']:.2f}"),
                 (f"  reconstruction ({r['reconstruction_loss']})", f"{r['reconstruction']:.2f}"),
                 ("  KL", f"{r['kl']:.2f}"),
                 (f"NLL estimate ({r['nll_samples']} importance samples, {r['nll_images']:,} images)",
                  f"{r['nll']:.2f}"),
                 ("active latent units", f"{r['active_units']}/{r['latent_dim']}")]
    if "fid_fmnist" in r:
        c = r["coverage"]
        rows += [(f"FID-FMNIST ({r['fid_samples']:,} samples)", f"{r['fid_fmnist']:.2f}"),
                 ("FID-FMNIST of an untrained model", f"{r['fid_fmnist_untrained']:.2f}"),
                 ("classes covered", f"{c['covered']}/{c['classes']} (entropy {c['entropy']:.3f}"
                                     f"{'; rare or missing: ' + ', '.join(c['rare']) if c['rare'] else ''})")]
        if r.get("inception_fid") is not None:
            rows.append(("Inception FID", f"{r['inception_fid']:.2f}"))
        if "conditional_accuracy" in r:
            rows.append(("samples classified as the class asked for", f"{r['conditional_accuracy']:.3f}"))
    print_table([{"metric": k, "value": v} for k, v in rows], title=f"{r['model']} on the {r['split']} split "
                                                                     f"({r['images']:,} images)")


def cmd_eval(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out

    r = get_task("generate").evaluate(args.weights, split=args.split, device=args.device, out_dir=args.out,
                 fid_classifier=args.fid_classifier, samples=args.samples, nll_samples=args.nll_samples,
                 nll_images=args.nll_images)
    print_summary(r)
    if args.out:
        out.print(f"wrote {args.out}/results.json, samples.png, coverage.png")
    return 0


def cmd_latent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dcvkit.cli.output import out
    from dcvkit.explain import latent

    run = Path(args.weights)
    out_dir = args.out or str((run if run.is_dir() else run.parent) / "latent")
    common = dict(device=args.device)
    if args.tool == "sample":
        paths = latent.sample(args.weights, out_dir, n=args.n, classes=args.classes, mix=args.mix, seed=args.seed,
                              **common)
    elif args.tool == "reconstruct":
        paths = latent.reconstruct(args.weights, out_dir, images=args.images, n=args.n, **common)
    elif args.tool == "interpolate":
        paths = latent.interpolate(args.weights, out_dir, a=args.a, b=args.b, steps=args.steps, method=args.method,
                                   pairs=args.pairs, classes=args.classes, seed=args.seed, **common)
    elif args.tool == "arithmetic":
        paths = latent.arithmetic(args.weights, out_dir, plus=args.plus, minus=args.minus, to=args.to, n=args.n,
                                  group=args.group, seed=args.seed, fid_classifier=args.fid_classifier, **common)
    else:
        try:
            dims = [int(d) for d in args.dims.split(",")] if args.dims else None
        except ValueError:
            from dcvkit.errors import ConfigError

            raise ConfigError(f"--dims '{args.dims}': give latent dimensions as integers, e.g. 0,3,5") from None
        paths = latent.traverse(args.weights, out_dir, dims=dims, extent=args.extent, steps=args.steps, base=args.base,
                                seed=args.seed, grid=args.grid, **common)
    for p in paths:
        out.print(f"wrote {p}")
    return 0


__all__ = ["build", "print_summary"]
