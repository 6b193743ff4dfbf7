"""Shared fixtures: small synthetic datasets that a tiny model can learn, and the real-data gate."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcvkit.data.core import ImageTensors
from dcvkit.data.idx import write_idx

CLASSES = [f"c{i}" for i in range(4)]


def synthetic_images(n: int, num_classes: int = 4, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size) images: class k is a bright horizontal bar in band k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    imgs = rng.integers(0, 60, size=(n, size, size)).astype(np.uint8)
    band = size // num_classes
    for i, k in enumerate(labels):
        imgs[i, k * band:k * band + max(1, band - 1), 2:-2] = 220
    return imgs, labels.astype(np.uint8)


@pytest.fixture
def tiny_tensors() -> ImageTensors:
    imgs, labels = synthetic_images(256)
    return ImageTensors(torch.from_numpy(imgs).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), CLASSES)


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A folder of MNIST-format files (named like Fashion-MNIST's) holding a small synthetic dataset."""
    d = tmp_path / "idx"
    for prefix, n, seed in (("train", 600, 0), ("t10k", 200, 1)):
        imgs, labels = synthetic_images(n, num_classes=10, seed=seed)
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return d


def write_png_folder(root: Path, per_class: int = 12, size: int = 28, layout: str = "subfolders") -> Path:
    imgs, labels = synthetic_images(per_class * 4, size=size)
    for i, (img, y) in enumerate(zip(imgs, labels)):
        if layout == "subfolders":
            path = root / CLASSES[y] / f"{i}.png"
        else:
            path = root / f"{CLASSES[y].replace('c', 'class')}.{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
    return root


def write_mask_pairs(root: Path, n: int = 6, size: int = 24, classes: list[str] | None = None, rgb: bool = False) -> Path:
    """Images with a bright square whose class (1 or 2) is its position; masks hold the ids."""
    from dcvkit.data.masks import IGNORE

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    pal = [(0, 0, 0), (200, 0, 0), (0, 200, 0)]
    for i in range(n):
        img = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), dtype=np.uint8)
        k = 1 + i % 2
        sl = (slice(4, 12), slice(4, 12)) if k == 1 else (slice(12, 20), slice(12, 20))
        img[sl] = 220
        mask[sl] = k
        mask[0, 0] = IGNORE
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        if rgb:
            colour = np.array(pal + [(224, 224, 192)] * 253, dtype=np.uint8)[mask]  # VOC's void colour
            Image.fromarray(colour).save(root / "masks" / f"{i:03d}.png")
        else:
            Image.fromarray(mask).save(root / "masks" / f"{i:03d}.png")
    if classes is not None:
        import yaml

        spec = {"names": classes, **({"palette": [list(c) for c in pal]} if rgb else {})}
        (root / "classes.yaml").write_text(yaml.safe_dump(spec))
    return root


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    return write_png_folder(tmp_path / "imgs")


@pytest.fixture
def fashion_mnist() -> Path:
    """The real Fashion-MNIST folder. Missing data fails under DCV_REQUIRE_DATA=1 (CI) and skips otherwise."""
    from dcvkit.data import named

    folder = named.find("fashion-mnist")
    if folder is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    return folder


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs go to a temp folder; ~/.cache/dcvkit and $DCV_DATA of the developer's machine are not used."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DCV_DATA", raising=False)
    torch.manual_seed(0)


def quick_args(*extra: str) -> list[str]:
    """Options for a fast training run from the CLI."""
    return ["--model", "cnn_tiny", "--epochs", "2", "--batch-size", "32", "--no-progress", "--no-tensorboard",
            "--lr", "0.05", *extra]


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """`dcv ARGV...` in-process: exit code (argparse's usage errors included), stdout, stderr."""
    from dcvkit.cli.main import main

    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse ends the process on a usage error (a missing file among them)
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str, exit_code: int = 2) -> str:
    """The CLI's bad-input contract: exit code 2, one line 'error: ...' holding ``fragments``, no traceback
    (dcvkit's own 'warning: ...' lines, e.g. a tiny validation split, may come before it)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert code == exit_code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def missing(what: str) -> None:
    """A test's set-up is missing: fail under DCV_REQUIRE_DATA=1 (CI), skip otherwise."""
    if os.environ.get("DCV_REQUIRE_DATA") == "1":
        pytest.fail(what)
    pytest.skip(what)


def _pg_program(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (a free port, a temp data folder), for the session; its URL.
    `make test` installs Debian's postgresql where the server programs are missing."""
    import pwd
    import socket
    import subprocess
    import tempfile

    initdb, pg_ctl = _pg_program("initdb"), _pg_program("pg_ctl")
    if not (initdb and pg_ctl):
        missing("PostgreSQL server programs (initdb, pg_ctl) not found; `make test` installs Debian's postgresql")
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's default PostgreSQL driver)
    except ImportError:
        missing("psycopg missing: pip install 'dcvkit[postgres]' (make setup installs it)")
    root = Path(tempfile.mkdtemp(prefix="dcv-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as Debian's postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                    "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        subprocess.run(["rm", "-rf", str(root)])


# --- runs for dcv serve's tests (tests/serve/) ---------------------------------------------------------------
SERVE_QUIET = ["--no-progress", "--no-tensorboard"]


def _train_quiet(argv: list[str]) -> None:
    from dcvkit.cli.main import main

    assert main([*argv, *SERVE_QUIET]) == 0


@pytest.fixture(scope="session")
def served(tmp_path_factory, request) -> dict[str, Path]:
    """name -> run directory: cls (cnn_tiny, 28x28 grey), seg (unet on 24x24 masks), vae; det (the session's
    yolo_run) and pose need Fashion-MNIST (missing: they are absent here, and the tests that need them fail
    in CI)."""
    root = tmp_path_factory.mktemp("served")
    write_png_folder(root / "pngs", per_class=16)
    _train_quiet(["classify", "train", "--data", str(root / "pngs"), "--model", "cnn_tiny", "--epochs", "2",
                  "--batch-size", "16", "--lr", "0.05", "--project", str(root), "--name", "cls"])
    write_mask_pairs(root / "masks", n=8)
    _train_quiet(["segment", "train", "--data", str(root / "masks"), "--epochs", "1", "--batch-size", "4",
                  "--depth", "2", "--base", "4", "--project", str(root), "--name", "seg"])
    for prefix, n, seed in (("train", 240, 0), ("t10k", 60, 1)):
        imgs, labels = synthetic_images(n, num_classes=10, seed=seed)
        write_idx(root / "idx" / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(root / "idx" / f"{prefix}-labels-idx1-ubyte.gz", labels)
    _train_quiet(["generate", "train", "--model", "vae", "--data", "fashion-mnist", "--data-dir", str(root / "idx"),
                  "--limit", "240", "--epochs", "1", "--batch-size", "60", "--width", "8", "--fid-samples", "200",
                  "--fid-epoch-samples", "100", "--nll-samples", "8", "--nll-images", "50",
                  "--project", str(root), "--name", "vae"])
    out = {"cls": root / "classify" / "cls", "seg": root / "segment" / "seg", "vae": root / "generate" / "vae"}
    from dcvkit.data import named

    if named.find("fashion-mnist") is not None:
        _train_quiet(["pose", "train", "--figures", "32", "--test-figures", "4", "--epochs", "1", "--batch-size", "8",
                      "--no-test", "--project", str(root), "--name", "pose"])
        out |= {"det": request.getfixturevalue("yolo_run"), "pose": root / "pose" / "pose"}
    return out


def need_run(served: dict[str, Path], name: str) -> Path:
    if name not in served:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    return served[name]


@pytest.fixture(scope="session")
def scene_image(tmp_path_factory) -> Path:
    """A FashionScenes test image (128x128, real Fashion-MNIST items), what the served detector knows."""
    from dcvkit.cli.main import main
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    out = tmp_path_factory.mktemp("scenes") / "scenes"
    assert main(["data", "scenes", "--out", str(out), "--n", "2", "--split", "test"]) == 0
    return sorted((out / "images").glob("*.png"))[0]


@pytest.fixture(scope="session")
def yolo_run(tmp_path_factory) -> Path:
    """A small yolo run on FashionScenes (14 epochs on 2,000 scenes, ~50 s on 2 cores: validation mAP@0.5
    ~0.7), trained once for the session: the tracking tests' detector and the served detector."""
    from dcvkit.cli.main import main
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    root = tmp_path_factory.mktemp("yolo")
    assert main(["detect", "train", "--model", "yolo", "--scenes", "2000", "--test-scenes", "4",
                 "--epochs", "14", "--no-progress", "--no-tensorboard", "--no-test",
                 "--project", str(root), "--name", "yolo"]) == 0
    return root / "detect" / "yolo"
