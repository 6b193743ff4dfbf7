"""``dcv classify`` end to end: train -> val -> predict, and every bad input as one line with exit code 2."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from PIL import Image

from conftest import assert_one_line_error, quick_args, run


def test_train_val_predict(idx_dir, tmp_path, capsys):
    code, out, _ = run(capsys, "classify", "train", "--data-dir", str(idx_dir), *quick_args("--name", "t"))
    assert code == 0 and "test accuracy" in out
    run_dir = Path("runs/classify/t")
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "curves.png", "confusion_matrix.png",
              "results.json", "predictions.png"):
        assert (run_dir / f).is_file(), f
    # a second run never overwrites the first
    assert run(capsys, "classify", "train", "--data-dir", str(idx_dir), *quick_args("--name", "t"))[0] == 0
    assert Path("runs/classify/t2/best.pt").is_file()

    code, out, _ = run(capsys, "classify", "val", str(run_dir), "--data-dir", str(idx_dir))
    assert code == 0 and "accuracy" in out and "top-5" in out and "10,000" not in out
    code, out, _ = run(capsys, "classify", "val", str(run_dir), "--split", "val")  # the run's own split
    assert code == 0 and "val split, 60 images" in out

    img = tmp_path / "big.png"
    Image.new("RGB", (56, 40), (200, 10, 10)).save(img)
    code, out, err = run(capsys, "classify", "predict", str(run_dir), str(img), "--topk", "3",
                         "--save", str(tmp_path / "p.json"))
    assert code == 0 and out.count(",") == 2 and "resized" in err
    preds = json.loads((tmp_path / "p.json").read_text())
    assert len(preds[0]["top"]) == 3 and abs(sum(t["probability"] for t in preds[0]["top"])) <= 1.0 + 1e-6


def test_config_file_is_used_and_saved(idx_dir, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {idx_dir}\nmodel: mlp_tiny\nepochs: 1\nprogress: false\ntensorboard: false\n")
    assert run(capsys, "classify", "train", "--config", str(cfg), "--batch-size", "50")[0] == 0
    saved = Path("runs/classify/exp/config.yaml").read_text()
    assert "model: mlp_tiny" in saved and "batch_size: 50" in saved


def test_missing_dataset(capsys):
    code, _, err = run(capsys, "classify", "train", "--data", "mnist", *quick_args())
    assert_one_line_error(code, err, "dataset 'mnist' not found", "--data-dir", "--download")


def test_truncated_idx(idx_dir, capsys):
    f = idx_dir / "train-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes())[:5000]))
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), *quick_args())
    assert_one_line_error(code, err, "train-images-idx3-ubyte.gz: truncated")


def test_corrupt_idx(idx_dir, capsys):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), *quick_args())
    assert_one_line_error(code, err, "t10k-labels-idx1-ubyte.gz: corrupt gzip")


def test_unreadable_image_in_folder(png_folder, capsys):
    (png_folder / "c0" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code, _, err = run(capsys, "classify", "train", "--data", str(png_folder), *quick_args())
    assert_one_line_error(code, err, "bad.jpg: unreadable image", "--skip-bad")
    code, _, _ = run(capsys, "classify", "train", "--data", str(png_folder), "--skip-bad", *quick_args())
    assert code == 0


def test_unknown_model(idx_dir, capsys):
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), *quick_args("--model", "resnet9000"))
    assert_one_line_error(code, err, "unknown model 'resnet9000'")


def test_bad_yaml_key_and_bad_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nlearning_rate: 0.1\n")
    code, _, err = run(capsys, "classify", "train", "--config", str(bad))
    assert_one_line_error(code, err, "bad.yaml: unknown key 'learning_rate'", "valid keys")
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: [2\n")
    code, _, err = run(capsys, "classify", "train", "--config", str(broken))
    assert_one_line_error(code, err, "broken.yaml: invalid YAML")


def test_bad_checkpoint_and_missing_image(tmp_path, capsys):
    code, _, err = run(capsys, "classify", "val", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "no such checkpoint")
    code, _, err = run(capsys, "classify", "predict", str(tmp_path), str(tmp_path / "x.png"))
    assert_one_line_error(code, err, "x.png: no such image file")
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"not a checkpoint")
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    code, _, err = run(capsys, "classify", "predict", str(fake), str(tmp_path / "x.png"))
    assert_one_line_error(code, err, "fake.pt: not a loadable checkpoint")


def test_malicious_checkpoint_is_refused(tmp_path, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    ckpt = tmp_path / "evil.pt"
    ckpt.write_bytes(pickle.dumps({"model": Evil()}))
    code, _, err = run(capsys, "classify", "val", str(ckpt))
    assert_one_line_error(code, err, "evil.pt: not a loadable checkpoint")
    assert not (tmp_path / "pwned").exists()


def test_diverging_training_exits_3_and_keeps_checkpoint(idx_dir, capsys):
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir),
                       *quick_args("--lr", "1e30", "--scheduler", "none", "--epochs", "3", "--name", "nan"))
    assert_one_line_error(code, err, "training diverged", "--lr", exit_code=3)


