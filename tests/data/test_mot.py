"""MOTChallenge files and frame sources: the line formats, round trips, seqmaps, videos and frame folders."""

from __future__ import annotations

import numpy as np
import pytest

from dcvkit.data.mot import (mot_lines, numbered_frames, open_source, read_mot_txt, read_sequence, read_sequences,
                             write_seqmap, write_sequence, write_video)
from dcvkit.errors import DataError


def test_lines_of_6_to_10_fields(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,1,10,20,30,40\n1,2,0,0,5,5,0.5\n2,1,11,20,30,40,1,3,0.8\n2,2,1,1,5,5,0.9,-1,-1,-1\n\n")
    r = read_mot_txt(p, frames=2)
    np.testing.assert_allclose(r[1].boxes, [[10, 20, 40, 60], [0, 0, 5, 5]])
    assert r[1].conf.tolist() == [1.0, 0.5] and r[1].classes.tolist() == [-1, -1]  # what short lines leave out
    assert r[1].visibility.tolist() == [-1.0, -1.0]
    assert r[2].classes.tolist() == [3, -1] and r[2].visibility.tolist() == [0.8, -1.0]


def test_results_and_ground_truth_lines_round_trip(tmp_path):
    ids, boxes = np.array([3, 7]), np.array([[1.5, 2.25, 11.5, 22.25], [0, 0, 4, 4]])
    lines = mot_lines(1, ids, boxes, np.array([0.9, 0.4])) + mot_lines(2, ids, boxes, classes=np.array([1, 2]),
                                                                          visibility=np.array([1.0, 0.5]))
    p = tmp_path / "r.txt"
    p.write_text("\n".join(lines))
    r = read_mot_txt(p)
    np.testing.assert_allclose(r[1].boxes, boxes)
    assert r[1].conf.tolist() == [0.9, 0.4] and r[2].classes.tolist() == [1, 2] and r[2].visibility[1] == 0.5


@pytest.mark.parametrize("line, fragment", [("1,1,2,3,4", "5 fields"), ("1,1,2,3,4,5,6,7,8,9,10", "11 fields"),
                                            ("1,1,a,3,4,5", "not a number"), ("0,1,2,3,4,5", "frame 0 is outside"),
                                            ("9,1,2,3,4,5", "frame 9 is outside"), ("1,1.5,2,3,4,5", "not a whole"),
                                            ("1,1,2,3,-4,5", "width and height"), ("1,1,nan,3,4,5", "finite")])
def test_bad_lines_name_the_file_and_line(tmp_path, line, fragment):
    p = tmp_path / "gt.txt"
    p.write_text(f"1,2,0,0,5,5\n{line}\n")
    with pytest.raises(DataError, match=fragment) as e:
        read_mot_txt(p, frames=5)
    assert "gt.txt:2:" in str(e.value)


def test_an_id_twice_in_a_frame(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,4,0,0,5,5\n1,4,9,9,5,5\n")
    with pytest.raises(DataError, match="gt.txt:2: id 4 appears twice in frame 1"):
        read_mot_txt(p)


def test_sequences_seqmaps_and_sources(tmp_path):
    frames = [np.full((20, 30, 3), k * 20, np.uint8) for k in range(5)]
    for name in ("b", "a"):
        write_sequence(tmp_path, name, frames, ["1,1,0,0,5,5,1,1,1.0"])
    assert [s.name for s in read_sequences(tmp_path)] == ["a", "b"]  # no seqmap: every sequence, in name order
    write_seqmap(tmp_path, "test", ["b"])
    assert [s.name for s in read_sequences(tmp_path)] == ["b"]  # the seqmap decides
    s = read_sequence(tmp_path / "a")
    assert len(s) == 5 and s.size == (30, 20) and s.gt_frame(1).ids.tolist() == [1] and len(s.gt_frame(2)) == 0
    src = open_source(tmp_path / "a")
    assert src.kind == "sequence" and [k for k, _ in src] == [1, 2, 3, 4, 5]
    video = write_video(tmp_path / "a.avi", frames, 10)
    v = open_source(video)
    got = list(v)
    assert v.kind == "video" and v.fps == 10 and len(got) == 5 and got[0][1].shape == (20, 30, 3)
    assert abs(int(got[2][1].mean()) - 40) <= 3  # MJPG: close to the frame written
    f = open_source(tmp_path / "a" / "img1")
    assert f.kind == "frames" and len(f) == 5


def test_frames_numbered_with_gaps_or_repeats(tmp_path):
    for name in ("1.png", "2.png", "4.png"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match="frame 3 is missing or repeated"):
        numbered_frames(tmp_path)
    for name in ("frame_a.png", "frame_b.png"):  # not numbered: name order
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in numbered_frames(tmp_path)][-2:] == ["frame_a.png", "frame_b.png"]


def test_seqinfo_that_disagrees_with_its_frames(tmp_path):
    seq = write_sequence(tmp_path, "s", [np.zeros((8, 8, 3), np.uint8)] * 3, [])
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=s\nimDir=img1\nseqLength=4\n")
    with pytest.raises(DataError, match="seqLength is 4 but .* holds 3 frames"):
        read_sequence(seq)
    (seq / "seqinfo.ini").write_text("[Sequence]\nimDir=../..\n")
    with pytest.raises(DataError, match="must be a folder of the sequence"):
        read_sequence(seq)
