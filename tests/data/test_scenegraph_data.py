"""Graph scenes' predicates checked against their definitions (the occluder really covers the occluded item's
pixels, tints, directions, the class-conditioned ones), the VG-like JSON written and read back, any such
file accepted, and bad entries as one-line errors naming the file and the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dcvkit.data import vg
from dcvkit.data.graph_scenes import FOOTWEAR, PALETTE, PREDICATES, TOPS, GraphSceneConfig, graph_scene
from dcvkit.errors import DataError

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def items():
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        from conftest import missing

        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    return named.load("fashion-mnist")


@pytest.fixture(scope="module")
def scenes(items):
    return items[0], [graph_scene(items[0], GraphSceneConfig(), 0, i) for i in range(60)]


def test_every_triple_holds_by_its_definition(scenes):
    items, all_scenes = scenes
    cfg = GraphSceneConfig()
    seen = set()
    for d in all_scenes:
        b, lab, tint, hidden = d["boxes"], d["labels"], d["tints"], d["hidden"]
        names = [items.classes[int(c)] for c in lab]
        for s, o, p in d["relations"].tolist():
            pred = PREDICATES[p]
            seen.add(pred)
            if pred == "in front of":
                assert hidden[s, o] >= cfg.min_hidden and s > o  # painted later, over the object's pixels
            elif pred == "behind":
                assert hidden[o, s] >= cfg.min_hidden and o > s
            else:
                assert hidden[s, o] < cfg.min_hidden and hidden[o, s] < cfg.min_hidden
            if pred == "matches":
                assert tint[s] == tint[o] and names[s] in TOPS and names[o] == "Trouser"
            if pred == "pairs with":
                assert names[s] == names[o] and names[s] in FOOTWEAR
            if pred == "same colour as":
                assert tint[s] == tint[o]
            if pred in ("left of", "right of", "above", "below"):
                dx = (b[s, 0] + b[s, 2] - b[o, 0] - b[o, 2]) / 2
                dy = (b[s, 1] + b[s, 3] - b[o, 1] - b[o, 3]) / 2
                want = ("left of" if dx < 0 else "right of") if abs(dx) >= abs(dy) else ("above" if dy < 0 else "below")
                assert pred == want
        # symmetric facts are stated both ways; left and right mirror each other
        rel = {(s, o): PREDICATES[p] for s, o, p in d["relations"].tolist()}
        mirror = {"in front of": "behind", "behind": "in front of", "left of": "right of", "right of": "left of",
                  "above": "below", "below": "above"}
        for (s, o), pred in rel.items():
            if pred in mirror:
                assert rel[(o, s)] == mirror[pred]
            elif pred == "same colour as":  # a trouser is the same colour as the top that matches it
                assert rel[(o, s)] in ("same colour as", "matches")
            elif pred in ("pairs with", "near", "overlapping"):
                assert rel[(o, s)] == pred
    assert {"in front of", "behind", "same colour as", "left of", "near"} <= seen


def test_the_occluder_covers_the_occluded_pixels_in_its_own_colour(scenes):
    """Where "s in front of o", s's tint shows over o's whole shape: the image's colour at those pixels is s's
    palette colour (up to the item's shading and rounding), not o's."""
    _, all_scenes = scenes
    checked = 0
    for d in all_scenes:
        img = d["image"].permute(1, 2, 0).numpy().astype(float)
        for s, o, p in d["relations"].tolist():
            if PREDICATES[p] != "in front of" or d["tints"][s] == d["tints"][o]:
                continue
            w = d["whole"][o]
            m = w["mask"].numpy()
            h, wd = m.shape
            region = img[w["y0"]:w["y0"] + h, w["x0"]:w["x0"] + wd][m]
            shown = d["instances"].numpy()[w["y0"]:w["y0"] + h, w["x0"]:w["x0"] + wd][m] == s + 1
            px = region[shown & (region.max(1) > 120)]  # bright enough for the tint's hue to be measured
            if len(px) < 5:
                continue
            hue = px / px.max(1, keepdims=True)
            mine, theirs = np.asarray(PALETTE[d["tints"][s]]), np.asarray(PALETTE[d["tints"][o]])
            assert np.abs(hue - mine / mine.max()).mean() < np.abs(hue - theirs / theirs.max()).mean()
            checked += 1
    assert checked >= 5


def test_written_and_read_back(items, tmp_path):
    from dcvkit.data.scenegraph import from_annotations, from_graph_scenes, write_graph_scenes

    data = from_graph_scenes(items[1], 6, seed=1)
    root = write_graph_scenes(data, tmp_path / "g")
    ann = vg.read(root / "scene_graphs.json")
    assert ann.classes == data.classes and ann.predicates == data.predicates
    back = from_annotations(ann, data.img_size)
    assert all(np.allclose(a.numpy(), b.numpy(), atol=0.01) for a, b in zip(back.boxes, data.boxes))
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(back.labels, data.labels))
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(back.relations, data.relations))
    assert np.array_equal(back.images.numpy(), data.images.numpy())


def _vg(tmp_path, doc) -> str:
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "images" / "7.jpg")
    path = tmp_path / "scene_graphs.json"
    path.write_text(json.dumps(doc))
    return str(path)


OBJECTS = [{"object_id": 10, "x": 2, "y": 3, "w": 20, "h": 10, "names": ["cup"]},
           {"object_id": 11, "x": 30, "y": 5, "w": 20, "h": 30, "names": ["table"]}]


def test_visual_genomes_own_list_with_custom_vocabulary(tmp_path):
    """VG's scene_graphs.json: a list of images, no file names (<image_id>.jpg), subject/object as objects."""
    path = _vg(tmp_path, [{"image_id": 7, "objects": OBJECTS, "relationships": [
        {"relationship_id": 1, "predicate": "ON", "subject": {"object_id": 10}, "object": {"object_id": 11}}]}])
    ann = vg.read(path)
    assert ann.classes == ["cup", "table"] and ann.predicates == ["on"]
    im = ann.images[0]
    assert im.file == "images/7.jpg" and (im.width, im.height) == (60, 40)
    assert im.boxes.tolist() == [[2, 3, 22, 13], [30, 5, 50, 35]] and im.relations.tolist() == [[0, 1, 0]]


@pytest.mark.parametrize("change, fragments", [
    (lambda d: d["images"][0]["relationships"][0].update(object_id=99),
     ["relationships[0]", "object_id 99 is not an object of this image"]),
    (lambda d: d["images"][0]["relationships"][0].update(predicate="under"),
     ["relationships[0]", "unknown predicate 'under'", "on"]),
    (lambda d: d["images"][0]["objects"][1].update(x=50),
     ["objects[1]", "object_id 11", "leaves the 60x40 image"]),
    (lambda d: d["images"][0]["objects"][0].update(w="wide"), ["objects[0]", "numeric x, y, w, h"]),
])
def test_bad_entries_name_the_file_and_the_entry(tmp_path, change, fragments):
    doc = {"predicates": ["on"], "images": [{"image_id": 7, "file_name": "images/7.jpg", "width": 60, "height": 40,
                                             "objects": [dict(o) for o in OBJECTS], "relationships": [
                                                 {"subject_id": 10, "predicate": "on", "object_id": 11}]}]}
    change(doc)
    with pytest.raises(DataError) as e:
        vg.read(_vg(tmp_path, doc))
    msg = str(e.value)
    assert "scene_graphs.json: images[0] (image_id 7)" in msg and "\n" not in msg
    for f in fragments:
        assert f in msg


def test_an_image_path_may_not_leave_the_folder(tmp_path):
    doc = {"images": [{"image_id": 1, "file_name": "../outside.jpg", "width": 60, "height": 40, "objects": OBJECTS,
                       "relationships": [{"subject_id": 10, "predicate": "on", "object_id": 11}]}]}
    with pytest.raises(DataError, match="outside the dataset folder"):
        vg.read(_vg(tmp_path, doc))
