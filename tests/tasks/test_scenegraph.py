"""End to end: dcv scenegraph train | val | predict, dcv data scenegraphs and the VG-like file (tiny settings:
the outputs are what is tested; the default runs' recalls are measured in docs/results.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, run

pytestmark = pytest.mark.data

TINY = ["--scenes", "48", "--test-scenes", "6", "--epochs", "1", "--batch-size", "16", "--no-progress",
        "--no-tensorboard"]


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory, yolo_run):
    from dcvkit.cli.main import main

    root = tmp_path_factory.mktemp("sg")
    assert main(["scenegraph", "train", "--model", "visual", "--project", str(root), "--name", "g",
                 "--detector", str(yolo_run), *TINY]) == 0
    return root / "scenegraph" / "g"


def test_train_writes_a_complete_run_with_the_three_protocols(graph_run):
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "curves.png", "results.json", "graphs.png",
              "per_predicate.png"):
        assert (graph_run / f).is_file(), f
    r = json.loads((graph_run / "results.json").read_text())
    assert set(r["protocols"]) == {"predcls", "sgcls", "sgdet"} and r["images"] == 6
    for p in r["protocols"].values():
        assert 0 <= p["R@20"] <= p["R@50"] <= p["R@100"] <= 1 and p["R@50"] <= p["ngR@50"] + 1e-9
        assert len(p["per_predicate"]) == 11 and p["ms_per_image"] > 0
    assert "warning" in r and "uncertain" in r["warning"]  # a handful of test triples
    header = (graph_run / "metrics.csv").read_text().splitlines()[0]
    assert "val_r50" in header and "val_mr50" in header and "train_rel_loss" in header


def test_val_on_a_written_file_equals_val_in_memory(graph_run, capsys, tmp_path):
    code, _, err = run(capsys, "data", "scenegraphs", "--out", str(tmp_path / "g"), "--n", "5", "--split", "test",
                       "--seed", "1")
    assert code == 0, err
    code, out, err = run(capsys, "scenegraph", "val", str(graph_run), "--data",
                         str(tmp_path / "g" / "scene_graphs.json"), "--out", str(tmp_path / "v"))
    assert code == 0, err
    from dcvkit.data import named
    from dcvkit.data.scenegraph import from_graph_scenes
    from dcvkit.tasks.scenegraph import evaluate

    from_file = json.loads((tmp_path / "v" / "results.json").read_text())
    in_memory = evaluate(graph_run / "best.pt", data=from_graph_scenes(named.load("fashion-mnist")[1], 5, 1))
    for name in ("predcls", "sgcls"):
        assert from_file["protocols"][name]["R@50"] == pytest.approx(in_memory["protocols"][name]["R@50"], abs=1e-6)
    assert "predcls" in out and "in front of" in out


def test_predict_an_image_of_another_size(graph_run, yolo_run, capsys, tmp_path, scene_image):
    img = Image.open(scene_image).convert("RGB").resize((200, 150))
    img.save(tmp_path / "wide.jpg")
    code, out, err = run(capsys, "scenegraph", "predict", str(graph_run), str(tmp_path / "wide.jpg"),
                         "--detector", str(yolo_run), "--out", str(tmp_path / "o"), "--min-score", "0")
    assert code == 0, err
    assert (tmp_path / "o" / "wide_graph.png").is_file()
    rows = json.loads((tmp_path / "o" / "triples.json").read_text())
    assert rows and all(r["predicate"] in json.loads((graph_run / "results.json").read_text())["predicates"]
                        for r in rows)
    for r in rows:  # boxes in the original image's pixels
        for k in ("subject", "object"):
            x1, y1, x2, y2 = r[k]["box"]
            assert -1 <= x1 < x2 <= 201 and -1 <= y1 < y2 <= 151
    assert "triples" in out


def test_predict_without_a_detector_says_what_to_give(graph_run, capsys, scene_image):
    code, _, err = run(capsys, "scenegraph", "predict", str(graph_run), str(scene_image))
    assert_one_line_error(code, err, "needs --detector RUN")


def test_flips_swap_left_and_right_or_above_and_below():
    from dcvkit.tasks.scenegraph import flip_index

    preds = ["left of", "right of", "above", "to the left of", "to the right of", "near"]
    assert flip_index(preds).tolist() == [1, 0, 2, 4, 3, 5]
    assert flip_index(["left of", "right of", "above", "below", "near"], "vertical").tolist() == [0, 1, 3, 2, 4]


def test_vertical_flips_default_on_for_the_generated_scenes_only(graph_run):
    import yaml

    assert yaml.safe_load((graph_run / "config.yaml").read_text())["vflip"] is True


def test_predicate_counts_include_the_unrelated_pairs():
    from dcvkit.data.scenegraph import SceneGraphTensors
    from dcvkit.tasks.scenegraph import predicate_counts, seen_triples

    data = SceneGraphTensors(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), [torch.zeros(3, 4)],
                             [torch.tensor([0, 0, 1])], [torch.tensor([[0, 2, 1], [2, 1, 0]])], ["a", "b"], ["p", "q"])
    c = predicate_counts(data)
    assert c[0, 0].tolist() == [2, 0, 0]  # the two class-a objects, both ways, unrelated
    assert c[0, 1].tolist() == [1, 0, 1] and c[1, 0].tolist() == [1, 1, 0]
    assert seen_triples(c) == {(0, 1, 1), (1, 0, 0)}


def test_bad_scene_graph_file_is_one_line(capsys, tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "g.json").write_text(json.dumps({"images": [{"image_id": 3, "file_name": "images/a.png", "width": 20,
        "height": 20, "objects": [{"object_id": 1, "x": 1, "y": 1, "w": 5, "h": 5, "names": ["cup"]}],
        "relationships": [{"subject_id": 1, "predicate": "on", "object_id": 2}]}]}))
    code, _, err = run(capsys, "scenegraph", "train", "--data", str(tmp_path / "g.json"), "--epochs", "1",
                       "--no-progress")
    assert_one_line_error(code, err, "g.json: images[0] (image_id 3) relationships[0]",
                          "object_id 2 is not an object of this image")


def test_bench_scenegraph_puts_the_models_side_by_side(graph_run, yolo_run, capsys, tmp_path):
    code, out, err = run(capsys, "bench", "scenegraph", "--project", str(tmp_path), "--models", "frequency,visual",
                         "--runs", f"visual={graph_run}", "--detector", str(yolo_run), "--scenes", "48",
                         "--test-scenes", "6", "--epochs", "1", "--no-progress")
    assert code == 0, err
    r = json.loads(next(tmp_path.glob("bench/scenegraph/*/bench.json")).read_text())
    assert [(row["model"], row["protocol"]) for row in r["rows"]] == [
        (m, p) for m in ("frequency", "visual") for p in ("predcls", "sgcls", "sgdet")]
    assert all(set(row["per_predicate"]) == set(r["predicates"]) for row in r["rows"])
    assert any(v.startswith("visual PredCls R@50") for v in r["verdicts"]) and "PredCls recall@50" in out
