"""End to end: dcv data clips (MOTChallenge layout, MP4), dcv track on a video, a frames folder and a MOT
sequence, dcv track val over every tracker, the crossing clip, dcv bench track, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, missing, run

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def items():
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")
    return named.load("fashion-mnist")[1]


@pytest.fixture(scope="module")
def yolo(yolo_run, items):
    """The session's small yolo run (tests/conftest.py: validation mAP@0.5 ~0.7, features that tell items
    apart); the default run (50 epochs on 3,600) is what the results are measured with."""
    return yolo_run


@pytest.fixture(scope="module")
def clips(tmp_path_factory, items):
    from dcvkit.cli.main import main

    out = tmp_path_factory.mktemp("clips") / "clips"
    assert main(["data", "clips", "--out", str(out), "--n", "2", "--frames", "12", "--video", "--crossing"]) == 0
    return out


def test_clips_are_written_in_the_motchallenge_layout(clips):
    from dcvkit.data.mot import read_sequences

    assert (clips / "seqmaps" / "test.txt").read_text().splitlines() == ["name", "clip-000", "clip-001", "clip-002"]
    seqs = read_sequences(clips)
    assert [s.name for s in seqs] == ["clip-000", "clip-001", "clip-002"]
    s = seqs[0]
    assert len(s) == 12 and s.size == (128, 128) and s.fps == 25
    assert s.info["imext"] == ".png" and (s.root / "img1" / "000012.png").is_file()
    ids = {int(i) for k in range(1, 13) for i in s.gt_frame(k).ids}
    assert len(ids) >= 3  # clips start with 3 to 6 items
    g = s.gt_frame(1)
    assert ((g.visibility >= 0.2) & (g.visibility <= 1)).all() and (g.classes >= 1).all() and (g.classes <= 10).all()
    assert (clips / "clip-000.mp4").stat().st_size > 1000


def test_clip_motion_is_smooth_and_deterministic(items):
    from dcvkit.data.clips import ClipConfig, make_clip

    a = make_clip(items, ClipConfig(frames=20), seed=3, index=1)
    b = make_clip(items, ClipConfig(frames=20), seed=3, index=1)
    assert (a.frames == b.frames).all()
    for t in range(1, 20):  # an id present in two frames in a row moves a few pixels, not across the frame
        prev = dict(zip(a.gt[t - 1].ids.tolist(), a.gt[t - 1].boxes))
        for i, box in zip(a.gt[t].ids.tolist(), a.gt[t].boxes):
            if i in prev:
                centre = (box[:2] + box[2:]) / 2 - (prev[i][:2] + prev[i][2:]) / 2
                assert np.abs(centre).max() < 12


def test_crossing_clip_hides_one_item_behind_the_other(items):
    from dcvkit.data.clips import crossing_clip

    clip = crossing_clip(items, frames=48)
    present = [set(g.ids.tolist()) for g in clip.gt]
    assert present[0] == present[-1] == {1, 2}
    assert any(p == {1} for p in present)  # item 2 hidden (under 20% visible) for some frames
    assert len({int(c) for g in clip.gt for c in g.classes}) == 1  # the same class


def test_track_a_sequence_writes_every_output(yolo, clips, capsys):
    code, out, err = run(capsys, "track", str(yolo), str(clips / "clip-000"), "--tracker", "bytetrack",
                         "--no-progress", "--score-thresh", "0.05", "--track-thresh", "0.1")
    assert code == 0, err
    d = Path(out.split("run directory: ")[1].split(" (")[0])
    for f in ("config.yaml", "results.txt", "tracks.json", "tracks.mp4", "summary.json", "metrics.json"):
        assert (d / f).is_file(), f
    s = json.loads((d / "summary.json").read_text())
    assert s["frames"] == 12 and s["kind"] == "sequence" and s["fps"] > 0 and s["tracker_ms_per_frame"] > 0
    m = json.loads((d / "metrics.json").read_text())
    assert set(m) >= {"MOTA", "IDF1", "HOTA", "DetA", "AssA", "LocA", "IDSW", "FP", "FN", "Frag"}
    from dcvkit.data.mot import read_mot_txt

    res = read_mot_txt(d / "results.txt", frames=12)  # our own results read back, no duplicate ids in a frame
    rows = json.loads((d / "tracks.json").read_text())
    assert sum(len(v) for v in res.values()) == len(rows)
    import cv2

    cap = cv2.VideoCapture(str(d / "tracks.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and cap.read()[1].shape == (384, 384, 3)
    cap.release()
    assert "seed: 0" in (d / "config.yaml").read_text() and "tracker: bytetrack" in (d / "config.yaml").read_text()


def test_track_a_video_and_a_frames_folder(yolo, clips, capsys, tmp_path):
    code, out, err = run(capsys, "track", "predict", str(yolo), str(clips / "clip-001.mp4"), "--no-progress",
                         "--no-video", "--tracker", "sort")
    assert code == 0, err and "12 frames" in out
    frames = tmp_path / "frames"  # wide frames (200 x 128), named frame_1.jpg ... frame_12.jpg
    frames.mkdir()
    from PIL import Image

    for k, p in enumerate(sorted((clips / "clip-001" / "img1").iterdir()), 1):
        Image.open(p).resize((200, 128)).save(frames / f"frame_{k}.jpg")
    code, out, err = run(capsys, "track", str(yolo), str(frames), "--no-progress", "--project", str(tmp_path / "p"),
                         "--score-thresh", "0.05", "--track-thresh", "0.1")
    assert code == 0, err
    assert "12 frames" in out and "HOTA" not in out  # no ground truth beside a frames folder
    d = tmp_path / "p" / "track" / "exp"
    rows = json.loads((d / "tracks.json").read_text())
    right = [r["bbox"][0] + r["bbox"][2] for r in rows]  # in the frame's own pixels, not the letterbox's
    assert rows and max(right) > 140 and all(-5 < r["bbox"][0] and x < 205 and r["bbox"][1] + r["bbox"][3] < 133
                                             for r, x in zip(rows, right))
    import cv2

    cap = cv2.VideoCapture(str(d / "tracks.mp4"))
    assert cap.read()[1].shape == (384, 600, 3)  # enlarged 3x, aspect kept
    cap.release()


def test_track_val_scores_every_tracker_on_the_same_detections(yolo, clips, capsys, tmp_path):
    code, out, err = run(capsys, "track", "val", str(yolo), "--data", str(clips), "--no-progress",
                         "--out", str(tmp_path / "val"), "--score-thresh", "0.05", "--track-thresh", "0.1")
    assert code == 0, err
    r = json.loads((tmp_path / "val" / "results.json").read_text())
    assert [x["tracker"] for x in r["rows"]] == ["iou", "sort", "bytetrack", "appearance"]
    assert r["sequences"] == 3 and r["frames"] == 12 + 12 + 48 and r["detector_ms_per_frame"] > 0
    for x in r["rows"]:
        assert 0 <= x["IDF1"] <= 1 and 0 <= x["HOTA"] <= 1 and x["MOTA"] <= 1 and x["tracker_ms_per_frame"] > 0
    assert "appearance" in out and "HOTA" in out and (tmp_path / "val" / "table.md").is_file()


def test_video_tracker_keeps_ids_across_calls(yolo, clips):
    from dcvkit.data.mot import open_source
    from dcvkit.tasks.track import TrackConfig, VideoTracker

    stream = VideoTracker(yolo, TrackConfig(score_thresh=0.05, track_thresh=0.1, device="cpu"))
    frames = [f for _, f in open_source(clips / "clip-000")]
    ids = [set(stream(f).ids.tolist()) for f in frames[:6]]
    assert ids[-1] and ids[-1] & ids[-2]  # the same ids frame after frame
    restarted = stream(frames[0], persist=False)  # a new stream: never an id of the old one
    assert not set(restarted.ids.tolist()) & set().union(*ids)


@pytest.mark.parametrize("seed", range(4))
def test_appearance_keeps_both_ids_through_the_crossing(yolo, items, seed):
    """Two T-shirts cross, the one behind hidden for several frames. Detections: the true boxes of what is at
    least half visible (the small detector of this test misses too much to stand in for the default run,
    whose own detections dcv bench track scores on these clips); appearance: that detector's features. The
    appearance tracker gives each item one id throughout."""
    from dcvkit.data.clips import crossing_clip
    from dcvkit.metrics.tracking import Frame, track_metrics
    from dcvkit.models.track import AppearanceTracker
    from dcvkit.tasks.track import FrameDetector, TrackConfig

    clip = crossing_clip(items, frames=48, seed=seed)
    detector = FrameDetector(yolo, TrackConfig(device="cpu"), embeddings=True)
    tracker = AppearanceTracker()
    frames, owner, hidden = [], {}, 0
    for img, g in zip(clip.frames, clip.gt):
        g = g.select(g.visibility >= 0.5)
        hidden += 2 not in g.ids
        d = detector(img.permute(1, 2, 0).numpy(), boxes=g.boxes)
        t = tracker.update(d.boxes, d.scores, d.labels, d.embeddings)
        frames.append(Frame(g.ids, g.boxes, t.ids, t.boxes))
        for gi, gb in zip(g.ids.tolist(), g.boxes):
            owner.setdefault(gi, set()).update(int(i) for i, b in zip(t.ids, t.boxes) if np.abs(b - gb).max() < 4)
    assert hidden >= 3  # the item behind is gone for a while
    assert len(owner[1]) == len(owner[2]) == 1 and owner[1] != owner[2], owner
    assert track_metrics([frames])["IDSW"] == 0


def test_bench_track_runs_side_by_side(yolo, clips, capsys, tmp_path):
    code, out, err = run(capsys, "bench", "track", "--run", str(yolo), "--data", str(clips), "--timing-frames", "5",
                         "--timing-objects", "4", "--crossings", "1", "--project", str(tmp_path), "--no-progress")
    assert code == 0, err
    r = json.loads((tmp_path / "bench" / "track" / "exp" / "bench.json").read_text())
    boxes = {x["boxes"] for x in r["rows"]}
    assert len(r["rows"]) == 8 and len(boxes) == 2 and "detector" in boxes
    det = [x for x in r["rows"] if x["boxes"] == "detector"]
    assert all(0 <= x["crossing_kept"] <= r["crossings"] for x in det)
    truth = [x for x in r["rows"] if x["boxes"] != "detector"]
    assert all(x["MOTA"] > 0.5 for x in truth)  # near-true boxes: association is all that is left to get wrong
    assert all(x["dense_ms_per_frame"] > 0 for x in r["rows"]) and r["detector_ms_per_frame"] > 0
    assert any(v.startswith("best tracker") for v in r["verdicts"]) and "association" in out


# --- bad input: one line naming the file (and the line), exit 2 ---------------------------------------------


def _sequence(tmp_path: Path, clips: Path) -> Path:
    seq = tmp_path / "seq"
    shutil.copytree(clips / "clip-000", seq)
    return seq


def test_unreadable_video(yolo, capsys, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 not a video" * 100)
    code, _, err = run(capsys, "track", str(yolo), str(bad), "--no-progress")
    assert_one_line_error(code, err, "broken.mp4", "unreadable video")


def test_truncated_video(yolo, clips, capsys, tmp_path):
    import cv2

    from dcvkit.data.mot import write_video

    frames = [cv2.imread(str(p))[..., ::-1] for p in sorted((clips / "clip-002" / "img1").iterdir())]
    full = write_video(tmp_path / "full.avi", frames, 25)  # MJPG: every frame on its own, a clean cut
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "track", str(yolo), str(cut), "--no-progress", "--project", str(tmp_path / "p"))
    assert_one_line_error(code, err, "cut.avi", "truncated video", "header says 48 frames")
    assert [p.name for p in (tmp_path / "p" / "track" / "exp").iterdir()] == ["config.yaml"]  # no half video


def test_gt_line_with_the_wrong_number_of_fields(yolo, clips, capsys, tmp_path):
    seq = _sequence(tmp_path, clips)
    lines = (seq / "gt" / "gt.txt").read_text().splitlines()
    lines[3] = "4,2,10,10,5"
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "track", str(yolo), str(seq), "--no-progress")
    assert_one_line_error(code, err, "gt.txt:4", "5 fields")


def test_frames_out_of_order(yolo, clips, capsys, tmp_path):
    seq = _sequence(tmp_path, clips)
    (seq / "img1" / "000005.png").rename(seq / "img1" / "000013.png")  # frame 5 missing, a 13th after 12
    code, _, err = run(capsys, "track", str(yolo), str(seq), "--no-progress")
    assert_one_line_error(code, err, "img1", "frame 5 is missing or repeated")
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("1.png", "01.png", "2.png"):  # frame 1 twice
        shutil.copy(seq / "img1" / "000001.png", frames / name)
    code, _, err = run(capsys, "track", str(yolo), str(frames), "--no-progress")
    assert_one_line_error(code, err, "frames", "missing or repeated")


def test_empty_sequence(yolo, clips, capsys, tmp_path):
    seq = _sequence(tmp_path, clips)
    for p in (seq / "img1").iterdir():
        p.unlink()
    code, _, err = run(capsys, "track", str(yolo), str(seq), "--no-progress")
    assert_one_line_error(code, err, "img1", "no frames found")
    code, _, err = run(capsys, "track", "val", str(yolo), "--data", str(tmp_path / "frames_nowhere"))
    assert_one_line_error(code, err, "frames_nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "track", "val", str(yolo), "--data", str(empty), "--no-progress")
    assert_one_line_error(code, err, "empty", "no MOT sequences")


def test_a_detection_run_and_one_tracker_are_required(yolo, clips, capsys, tmp_path):
    code, _, err = run(capsys, "track", str(clips), str(clips / "clip-000"))
    assert_one_line_error(code, err, "clips")
    code, _, err = run(capsys, "track", "predict", str(yolo), str(clips / "clip-000"), "--tracker", "all")
    assert_one_line_error(code, err, "--tracker all", "dcv track val")
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(capsys, "track", str(yolo), str(tmp_path / "notes.txt"))
    assert_one_line_error(code, err, "notes.txt", "not a video")
