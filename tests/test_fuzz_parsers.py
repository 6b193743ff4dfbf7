"""Every parser of user files, fed random bytes and random structured garbage: only dcvkit's own errors
(:class:`dcvkit.errors.DcvError`, which the CLI prints as one line with exit code 2) may come out, never a
traceback, and nothing outside the dataset folder is read."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcvkit.errors import DcvError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # dropped degenerate boxes are warned about

# JSON-like garbage: any nesting of the values a JSON or YAML file can hold.
scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12)
garbage = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


def only_dcv_errors(fn, *args, **kwargs):
    """Call ``fn``: it may succeed or raise a DcvError (with a message), nothing else."""
    try:
        return fn(*args, **kwargs)
    except DcvError as e:
        assert str(e).strip(), "an error without a message"
        return None


def fresh(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    if d.exists():
        import shutil

        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def png_bytes(w: int = 8, h: int = 6, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, format="PNG")
    return buf.getvalue()


# --- IDX (Fashion-MNIST's format) ------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300), gz=st.booleans())
def test_idx_random_bytes(tmp_path, data, gz):
    from dcvkit.data.idx import read_idx

    path = tmp_path / ("x-idx3-ubyte.gz" if gz else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(data) if gz else data)
    only_dcv_errors(read_idx, path)


@FUZZ
@given(dtype=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]), ndim=st.integers(0, 5),
       dims=st.lists(st.integers(0, 2**31 - 1), min_size=5, max_size=5), tail=st.binary(max_size=200))
def test_idx_plausible_headers(tmp_path, dtype, ndim, dims, tail):
    """A well-formed magic number with absurd dimensions (up to 2^31 per axis) and too little data."""
    from dcvkit.data.idx import read_idx

    path = tmp_path / "y-idx3-ubyte"
    path.write_bytes(bytes([0, 0, dtype, ndim]) + struct.pack(f">{ndim}I", *dims[:ndim]) + tail)
    only_dcv_errors(read_idx, path)


# --- images ---------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a"]))
def test_image_decoder_random_bytes(tmp_path, data, prefix):
    from dcvkit.data.folders import decode, probe

    path = tmp_path / "img.png"
    path.write_bytes(prefix + data)
    only_dcv_errors(probe, path)
    only_dcv_errors(decode, path, 1, (8, 8))


def test_truncated_png_in_every_length(tmp_path):
    from dcvkit.data.folders import decode

    good = png_bytes(16, 16)
    for cut in range(0, len(good), 7):
        path = tmp_path / "cut.png"
        path.write_bytes(good[:cut])
        only_dcv_errors(decode, path, 3, (16, 16))


# --- COCO JSON ------------------------------------------------------------------------------------------


def _coco_root(tmp_path: Path) -> Path:
    root = fresh(tmp_path, "coco")
    (root / "images").mkdir()
    (root / "images" / "a.png").write_bytes(png_bytes(40, 30))
    return root


@FUZZ
@given(doc=garbage)
def test_coco_random_structures(tmp_path, doc):
    from dcvkit.data import coco

    root = _coco_root(tmp_path)
    (root / "annotations.json").write_text(json.dumps(doc))
    only_dcv_errors(coco.read, root / "annotations.json")


@FUZZ
@given(image=st.dictionaries(st.sampled_from(["id", "file_name", "width", "height"]), garbage, max_size=4),
       ann=st.dictionaries(st.sampled_from(["id", "image_id", "category_id", "bbox", "segmentation", "iscrowd",
                                            "area"]), garbage, max_size=7),
       cat=st.dictionaries(st.sampled_from(["id", "name"]), garbage, max_size=2))
def test_coco_garbage_in_the_right_places(tmp_path, image, ann, cat):
    """Valid COCO keys holding random values (NaN boxes, strings for numbers, lists for ids...)."""
    from dcvkit.data import coco

    root = _coco_root(tmp_path)
    doc = {"images": [{"id": 1, "file_name": "images/a.png", "width": 40, "height": 30}, image],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10]}, ann],
           "categories": [{"id": 1, "name": "shirt"}, cat]}
    (root / "annotations.json").write_text(json.dumps(doc))
    ann_read = only_dcv_errors(coco.read, root / "annotations.json")
    if ann_read is not None:  # whatever was accepted stays inside the dataset folder
        for item in ann_read.images:
            assert root.resolve() in Path(item.path).resolve().parents


# --- YOLO -----------------------------------------------------------------------------------------------


line = st.lists(st.one_of(st.sampled_from(["0", "1", "7", "-1", "nan", "inf", "0.5", "1e9", "", "x", "../"]),
                          st.floats(allow_nan=True).map(str)), max_size=7).map(" ".join)


@FUZZ
@given(labels=st.lists(line, max_size=5).map("\n".join), data_yaml=st.one_of(
    st.just("path: .\ntrain: images\nval: images\nnames: [shirt, bag]\n"), garbage.map(yaml.safe_dump),
    st.text(max_size=80)))
def test_yolo_random_labels_and_data_yaml(tmp_path, labels, data_yaml):
    from dcvkit.data import yolo

    root = fresh(tmp_path, "yolo")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    (root / "images" / "a.png").write_bytes(png_bytes(32, 32))
    (root / "labels" / "a.txt").write_text(labels)
    (root / "data.yaml").write_text(data_yaml)
    only_dcv_errors(yolo.read, root / "data.yaml")


@pytest.mark.parametrize("spec", ["path: .\ntrain: ../../etc", "path: /etc\ntrain: .", "path: ../..\ntrain: ."])
def test_yolo_data_yaml_cannot_leave_the_dataset(tmp_path, spec):
    from dcvkit.data import yolo

    root = fresh(tmp_path, "yolo")
    (root / "data.yaml").write_text(f"{spec}\nnames: [a]\n")
    with pytest.raises(DcvError, match="outside the dataset folder"):
        yolo.read(root / "data.yaml")


# --- Pascal VOC -----------------------------------------------------------------------------------------


xml_text = st.one_of(st.text(max_size=200), st.builds(
    lambda name, box, size: (f"<annotation><filename>a.png</filename><size><width>{size[0]}</width>"
                             f"<height>{size[1]}</height><depth>3</depth></size><object><name>{name}</name>"
                             f"<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax>"
                             f"<ymax>{box[3]}</ymax></bndbox></object></annotation>"),
    st.text(max_size=8), st.lists(st.one_of(st.integers(-50, 100).map(str), st.sampled_from(["nan", "x", ""])),
                                  min_size=4, max_size=4),
    st.lists(st.one_of(st.integers(-5, 60).map(str), st.just("w")), min_size=2, max_size=2)))


@FUZZ
@given(xml=xml_text)
def test_voc_random_xml(tmp_path, xml):
    from dcvkit.data import voc

    root = fresh(tmp_path, "voc")
    for sub in ("Annotations", "JPEGImages"):
        (root / sub).mkdir()
    (root / "JPEGImages" / "a.png").write_bytes(png_bytes(40, 30))
    (root / "Annotations" / "a.xml").write_text(xml)
    only_dcv_errors(voc.read, root)


# --- segmentation masks ---------------------------------------------------------------------------------


@FUZZ
@given(mask=st.one_of(st.binary(max_size=200), st.builds(
    lambda arr, mode: (lambda b: (Image.fromarray(arr.astype(np.uint8)).convert(mode).save(b, format="PNG"),
                                  b.getvalue())[1])(io.BytesIO()),
    st.integers(1, 12).flatmap(lambda h: st.lists(st.lists(st.integers(0, 255), min_size=h, max_size=h),
                                                  min_size=1, max_size=12).map(np.array)),
    st.sampled_from(["L", "RGB", "P", "1"]))), classes=st.one_of(st.none(), garbage.map(yaml.safe_dump)))
def test_mask_folder_random_masks_and_classes(tmp_path, mask, classes):
    from dcvkit.data.masks import load_mask_folder

    root = fresh(tmp_path, "seg")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    (root / "images" / "a.png").write_bytes(png_bytes(8, 6, "L"))
    (root / "masks" / "a.png").write_bytes(mask)
    if classes is not None:
        (root / "classes.yaml").write_text(classes)
    only_dcv_errors(load_mask_folder, root)


# --- configs, augmentation specs, search spaces, checkpoints ----------------------------------------------


@FUZZ
@given(doc=st.one_of(garbage.map(yaml.safe_dump), st.text(max_size=120)))
def test_config_yaml_random(tmp_path, doc):
    from dcvkit.config import from_dict, load_yaml
    from dcvkit.tasks.classify import ClassifyConfig

    path = tmp_path / "c.yaml"
    path.write_text(doc)
    values = only_dcv_errors(load_yaml, path)
    if values is not None:
        only_dcv_errors(from_dict, ClassifyConfig, values, where=str(path))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(["lr", "epochs", "batch_size", "dropout", "model", "scheduler",
                                               "optimizer", "monitor", "augment", "seed", "patience", "limit"]),
                              garbage, max_size=5))
def test_config_values_random(values):
    from dcvkit.config import from_dict
    from dcvkit.tasks.classify import ClassifyConfig

    only_dcv_errors(from_dict, ClassifyConfig, values, where="fuzz")


@FUZZ
@given(spec=st.one_of(st.text(max_size=80), garbage.filter(lambda v: isinstance(v, dict))))
def test_augment_spec_random(spec):
    from dcvkit.augment import parse_augment

    if isinstance(spec, str) and (spec.endswith((".yaml", ".yml")) or Path(spec).exists()):
        return  # a file name: covered by the YAML tests
    only_dcv_errors(parse_augment, spec)


@FUZZ
@given(space=garbage)
def test_tune_space_random(space):
    from dcvkit.tasks.classify import ClassifyConfig
    from dcvkit.tune.space import parse_space

    only_dcv_errors(parse_space, space, ClassifyConfig, "fuzz.yaml")


@FUZZ
@given(data=st.binary(max_size=300))
def test_checkpoint_random_bytes(tmp_path, data):
    from dcvkit.io import load_checkpoint

    path = tmp_path / "x.pt"
    path.write_bytes(data)
    only_dcv_errors(load_checkpoint, path)


# --- MOTChallenge (tracking) -----------------------------------------------------------------------------

mot_field = st.sampled_from(["1", "2", "-1", "0.5", "1e9", "nan", "inf", "", "x", " 3 ", "-0", "10.0"])


@FUZZ
@given(lines=st.lists(st.lists(mot_field, max_size=12).map(",".join) | st.text(max_size=40), max_size=8),
       raw=st.binary(max_size=80))
def test_mot_txt_random_lines(tmp_path, lines, raw):
    from dcvkit.data.mot import read_mot_txt

    path = tmp_path / "gt.txt"
    path.write_text("\n".join(lines))
    out = only_dcv_errors(read_mot_txt, path, frames=5)
    if out is not None:  # what is read is whole: frames in range, whole ids, boxes of four finite numbers
        assert all(1 <= k <= 5 for k in out)
        assert all(np.isfinite(b.boxes).all() and b.boxes.shape[1] == 4 for b in out.values())
    path.write_bytes(raw)
    only_dcv_errors(read_mot_txt, path)


@FUZZ
@given(ini=st.text(max_size=120), sections=st.dictionaries(
    st.sampled_from(["name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt"]),
    st.sampled_from(["img1", "..", "/etc", "2", "0", "-1", "x", "nan", "25", "1e308"]), max_size=7))
def test_mot_sequence_random_seqinfo(tmp_path, ini, sections):
    from dcvkit.data.mot import read_sequence, read_sequences

    seq = fresh(tmp_path, "seq")
    (seq / "img1").mkdir()
    for k in (1, 2):
        (seq / "img1" / f"{k:06d}.png").write_bytes(png_bytes())
    (seq / "seqinfo.ini").write_text(ini)
    only_dcv_errors(read_sequence, seq)
    (seq / "seqinfo.ini").write_text("[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in sections.items()))
    s = only_dcv_errors(read_sequence, seq)
    if s is not None:  # the frames read are the sequence's own
        assert all(p.resolve().parent.parent == seq.resolve() for p in s.frames)
    only_dcv_errors(read_sequences, tmp_path)


# --- pose (COCO keypoints, YOLO-pose) ----------------------------------------------------------------------


@FUZZ
@given(cat=garbage, ann=garbage, keypoints=st.lists(st.floats(allow_nan=True) | st.integers(-3, 5), max_size=60),
       names=st.lists(st.sampled_from(["nose", "left_eye", "right_eye", "left_hand", "x"]), max_size=6),
       skeleton=st.lists(st.lists(st.integers(-2, 9), min_size=2, max_size=2), max_size=4),
       flip=st.lists(st.integers(-1, 7), max_size=6))
def test_coco_keypoints_garbage(tmp_path, cat, ann, keypoints, names, skeleton, flip):
    from dcvkit.data.keypoints import read_coco

    d = fresh(tmp_path, "kp")
    (d / "a.png").write_bytes(png_bytes())
    for category in (cat, {"id": 1, "name": "p", "keypoints": names, "skeleton": skeleton, "flip_idx": flip}):
        doc = {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 6}],
               "annotations": [ann, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4],
                                     "keypoints": keypoints}],
               "categories": [category]}
        (d / "a.json").write_text(json.dumps(doc))
        only_dcv_errors(read_coco, d / "a.json")


@FUZZ
@given(line=st.lists(st.sampled_from(["0", "0.5", "2", "3", "-1", "nan", "x", "1e9"]), max_size=30).map(" ".join),
       shape=st.lists(st.integers(-1, 4), max_size=3), flip=garbage)
def test_yolo_pose_garbage(tmp_path, line, shape, flip):
    from dcvkit.data.keypoints import read_yolo

    d = fresh(tmp_path, "yp")
    (d / "images").mkdir()
    (d / "labels").mkdir()
    (d / "images" / "a.png").write_bytes(png_bytes())
    (d / "labels" / "a.txt").write_text(line + "\n")
    (d / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images", "names": {0: "p"},
                                                 "kpt_shape": shape, "flip_idx": flip}))
    only_dcv_errors(read_yolo, d / "data.yaml")


# --- scene graphs (Visual-Genome-like JSON) ----------------------------------------------------------------


@FUZZ
@given(doc=garbage, image=st.dictionaries(st.sampled_from(["image_id", "file_name", "width", "height", "objects",
                                                           "relationships"]), garbage, max_size=6),
       obj=st.dictionaries(st.sampled_from(["object_id", "x", "y", "w", "h", "names", "name"]), garbage, max_size=7),
       rel=st.dictionaries(st.sampled_from(["subject_id", "object_id", "predicate", "subject", "object"]), garbage,
                           max_size=5), vocab=garbage)
def test_scene_graph_garbage(tmp_path, doc, image, obj, rel, vocab):
    from dcvkit.data import vg

    d = fresh(tmp_path, "vg")
    (d / "a.png").write_bytes(png_bytes())
    good = {"image_id": 1, "file_name": "a.png", "width": 8, "height": 6,
            "objects": [{"object_id": 1, "x": 0, "y": 0, "w": 4, "h": 4, "names": ["cup"]}, obj],
            "relationships": [{"subject_id": 1, "predicate": "on", "object_id": 1}, rel]}
    for candidate in (doc, {"images": [good, image]}, {"classes": vocab, "predicates": vocab, "images": [good]},
                      [{**good, **image}]):
        (d / "g.json").write_text(json.dumps(candidate))
        ann = only_dcv_errors(vg.read, d / "g.json")
        if ann is not None:  # whatever was accepted stays inside the folder
            for im in ann.images:
                assert d.resolve() in (d / im.file).resolve().parents


kitti_field = st.sampled_from(["Car", "Van", "DontCare", "0", "1", "2", "3", "-1", "0.5", "1.6", "-10", "1e9", "nan",
                               "inf", "x", "-0"])


@FUZZ
@given(lines=st.lists(st.lists(kitti_field, min_size=13, max_size=17).map(" ".join) | st.text(max_size=40),
                      max_size=6),
       calib=st.lists(st.tuples(st.sampled_from(["P2", "R0_rect", "Tr_velo_to_cam", "P0", "R_rect", "x"]),
                                st.lists(kitti_field, max_size=14).map(" ".join)), max_size=5),
       raw=st.binary(max_size=80))
def test_kitti_labels_calib_and_points_garbage(tmp_path, lines, calib, raw):
    from dcvkit.data.calib import Calibration
    from dcvkit.data.kitti import read_calib, read_labels, read_velodyne

    label = tmp_path / "l.txt"
    label.write_text("\n".join(lines))
    out = only_dcv_errors(read_labels, label, Calibration.simulated())
    if out is not None:  # what is read is whole: finite boxes with positive sizes, flags 0-3
        assert np.isfinite(out.boxes).all() and (out.boxes[:, 3:6] > 0).all() and (out.occluded <= 3).all()
    cal = tmp_path / "c.txt"
    cal.write_text("\n".join(f"{k}: {v}" for k, v in calib))
    c = only_dcv_errors(read_calib, cal)
    if c is not None:
        assert np.isfinite(c.P2).all() and c.P2.shape == (3, 4)
    velo = tmp_path / "v.bin"
    velo.write_bytes(raw)
    pts = only_dcv_errors(read_velodyne, velo)
    if pts is not None:
        assert np.isfinite(pts).all() and pts.shape[1] == 4
