"""dcv serve's API in-process (FastAPI's TestClient): answers equal to the in-process predict, every task's
schema, the OpenAPI contract, bad uploads as 4xx JSON errors after which the server keeps serving, the API
key, the ONNX backend."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import need_run as need

pytest.importorskip("fastapi", reason="dcv serve needs fastapi: pip install 'dcvkit[serve]'")


def _client(runs: dict[str, Path], **kwargs):
    from fastapi.testclient import TestClient

    from dcvkit.serve.app import create_app
    from dcvkit.serve.server import load_runs

    return TestClient(create_app(load_runs([f"{k}={v}" for k, v in runs.items()], "cpu"), **kwargs))


def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def photo(width: int = 300, height: int = 200) -> np.ndarray:
    """A real photograph (scikit-image's astronaut) at an aspect ratio no run was trained on."""
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.BILINEAR))


@pytest.fixture(scope="module")
def client(served):
    with _client({k: v for k, v in served.items()}) as c:
        yield c


def _post_image(client, run: str, data: bytes, **params):
    return client.post(f"/v1/runs/{run}/predict", files={"image": ("x.png", data, "image/png")}, params=params)


def test_runs_health_and_readiness(client, served):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "runs": list(served)}
    runs = {r["name"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert runs["cls"]["task"] == "classify" and runs["cls"]["input"] == {"channels": 1, "size": [28, 28]}
    assert runs["cls"]["classes"] == ["c0", "c1", "c2", "c3"] and runs["cls"]["backend"] == "torch"
    assert runs["seg"]["task"] == "segment" and runs["vae"]["accepts"] == "none"
    assert runs["cls"]["batching"]["max_batch"] == 32 and "topk" in runs["cls"]["options"]


def test_classifier_answer_equals_in_process_predict(client, served, tmp_path):
    from dcvkit.tasks.classify import predict

    path = sorted((served["cls"].parent.parent / "pngs" / "c2").glob("*.png"))[0]
    want = predict(served["cls"], [path], topk=4, device="cpu")[0]
    for r in (_post_image(client, "cls", path.read_bytes(), topk=4),  # multipart
              client.post("/v1/runs/cls/predict", json={"image": base64.b64encode(path.read_bytes()).decode(),
                                                        "topk": 4}),  # JSON, base64
              client.post("/v1/runs/cls/predict?topk=4", content=path.read_bytes(),
                          headers={"content-type": "image/png"})):  # raw bytes
        assert r.status_code == 200, r.text
        got = r.json()
        assert [t["class"] for t in got["top"]] == [c for c, _ in want.top]
        np.testing.assert_allclose([t["probability"] for t in got["top"]], [p for _, p in want.top], atol=1e-5)
        assert abs(sum(got["probabilities"].values()) - 1) < 1e-5 and got["batch"] >= 1


@pytest.mark.parametrize("shape", [None, (300, 200)])
def test_detector_answer_equals_in_process_predict(client, served, scene_image, tmp_path, shape):
    from dcvkit.tasks.detect import predict

    det = need(served, "det")
    img = scene_image
    if shape:  # the scene stretched to another size and aspect ratio, as a JPEG
        img = tmp_path / "scene.jpg"
        img.write_bytes(_png(np.asarray(Image.open(scene_image).convert("RGB").resize(shape)), "JPEG"))
    # a low threshold: more boxes make a stronger comparison
    want = predict(det, [img], tmp_path / "out", device="cpu", score_thresh=0.001)[0].detections
    r = client.post("/v1/runs/det/predict", files={"image": (img.name, img.read_bytes(), "image/jpeg")},
                    params={"score_thresh": 0.001})
    assert r.status_code == 200, r.text
    got = r.json()
    size = shape or (128, 128)
    assert (got["width"], got["height"]) == size and len(got["boxes"]) == len(want) > 0
    for g, w in zip(got["boxes"], want):
        x, y, bw, bh = w["bbox"]
        np.testing.assert_allclose(g["box"], [x, y, x + bw, y + bh], atol=0.02)
        assert g["class"] == w["category"] and abs(g["score"] - w["score"]) < 1e-4


def test_segmenter_pose_and_generator_answers(client, served):
    seg = _post_image(client, "seg", _png(photo(40, 30))).json()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(seg["mask_png"]))))
    assert mask.shape == (30, 40) and sum(seg["pixels"].values()) == 30 * 40  # the upload's own size
    vae = client.post("/v1/runs/vae/predict", params={"n": 3, "seed": 5, "steps": 4}).json()
    assert len(vae["images"]) == 3 and len(vae["interpolation"]) == 4
    again = client.post("/v1/runs/vae/predict", json={"n": 3, "seed": 5}).json()
    assert again["images"] == vae["images"] and "interpolation" not in again  # the seed decides the codes
    assert Image.open(io.BytesIO(base64.b64decode(vae["images"][0]))).size == (28, 28)
    need(served, "pose")
    pose = _post_image(client, "pose", _png(photo(160, 120)), score_thresh=0.0).json()
    assert pose["task"] == "pose" and (pose["width"], pose["height"]) == (160, 120)
    assert all(len(p["keypoints"]) == 17 for p in pose["people"])


def test_saliency_overlay_for_a_classifier(client, served):
    path = sorted((served["cls"].parent.parent / "pngs" / "c1").glob("*.png"))[0]
    r = _post_image(client, "cls", path.read_bytes(), saliency="gradient").json()
    overlay = Image.open(io.BytesIO(base64.b64decode(r["saliency"]["png"])))
    assert overlay.mode == "RGBA" and overlay.size == (28, 28) and r["saliency"]["class"] == r["top"][0]["class"]
    assert np.asarray(overlay)[..., 3].max() > 0  # not an empty map


def _validator(spec: dict, schema: dict):
    from jsonschema import Draft202012Validator

    return Draft202012Validator({**schema, "components": spec["components"]})


def test_every_answer_matches_the_openapi_schema(client, served):
    """The contract: every route in the OpenAPI document answers with a documented status, and its JSON
    validates against the schema documented for that status (errors included)."""
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {"/healthz", "/readyz", "/v1/runs", "/v1/runs/{name}/predict"}
    png = sorted((served["cls"].parent.parent / "pngs" / "c0").glob("*.png"))[0].read_bytes()
    calls = [("get", "/healthz", {}), ("get", "/readyz", {}), ("get", "/v1/runs", {}),
             ("post", "/v1/runs/cls/predict", {"files": {"image": ("a.png", png, "image/png")}}),
             ("post", "/v1/runs/seg/predict", {"files": {"image": ("a.png", _png(photo(32, 32)), "image/png")}}),
             ("post", "/v1/runs/vae/predict", {"params": {"n": 2}}),
             ("post", "/v1/runs/nope/predict", {"content": png, "headers": {"content-type": "image/png"}}),
             ("post", "/v1/runs/cls/predict", {"content": b"GIF89a-not-really",
                                               "headers": {"content-type": "image/gif"}}),
             ("post", "/v1/runs/cls/predict", {"content": b"x", "headers": {"content-type": "text/plain"}}),
             ("post", "/v1/runs/cls/predict?topk=0", {"content": png, "headers": {"content-type": "image/png"}})]
    if "det" in served:
        calls.append(("post", "/v1/runs/det/predict", {"files": {"image": ("p.png", _png(photo()), "image/png")}}))
    seen = set()
    for method, url, kw in calls:
        r = getattr(client, method)(url, **kw)
        template = "/v1/runs/{name}/predict" if url.startswith("/v1/runs/") and "predict" in url else url
        documented = paths[template][method]["responses"]
        assert str(r.status_code) in documented, (url, r.status_code, r.text)
        schema = documented[str(r.status_code)]["content"]["application/json"]["schema"]
        errors = [e.message for e in _validator(spec, schema).iter_errors(r.json())]
        assert not errors, (url, errors[:3])
        seen.add((template, r.status_code))
    assert {s for t, s in seen if t.endswith("predict")} >= {200, 400, 404, 415, 422}


def test_bad_uploads_get_a_4xx_with_a_message_and_the_server_keeps_serving(served):
    good = sorted((served["cls"].parent.parent / "pngs" / "c3").glob("*.png"))[0].read_bytes()
    jpeg = _png(photo(), "JPEG")
    bomb = _png(np.zeros((8000, 6000), np.uint8))  # 48 megapixels of zeros: a few kB compressed
    with _client({"cls": served["cls"], "vae": served["vae"]}, max_upload_mb=0.5) as c:
        cases = [
            (415, {"content": good, "headers": {"content-type": "text/plain"}}, "content type"),
            (415, {"files": {"image": ("a.txt", b"hello", "text/plain")}}, "not an image"),
            (400, {"content": b"not an image at all", "headers": {"content-type": "image/png"}}, "not an image file"),
            (400, {"content": jpeg[:len(jpeg) // 2], "headers": {"content-type": "image/jpeg"}}, "truncated"),
            (400, {"content": bomb, "headers": {"content-type": "image/png"}}, "megapixels"),
            (413, {"content": b"\0" * 600_000, "headers": {"content-type": "image/png"}}, "over the limit"),
            (400, {"json": {"image": "%%% not base64"}}, "base64"),
            (400, {"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, "object"),
            (400, {"content": b"{oops", "headers": {"content-type": "application/json"}}, "does not parse"),
            (422, {"json": {"image": base64.b64encode(good).decode(), "topk": "many"}}, "topk"),
            (422, {"json": {"image": base64.b64encode(good).decode(), "colour": 1}}, "unknown option"),
            (400, {"params": {"topk": 2}}, "no image"),
        ]
        for status, kw, fragment in cases:
            r = c.post("/v1/runs/cls/predict", **kw)
            assert r.status_code == status, (fragment, r.status_code, r.text)
            msg = r.json()["error"]
            assert fragment in msg and "\n" not in msg and "Traceback" not in msg, msg
            ok = c.post("/v1/runs/cls/predict", content=good, headers={"content-type": "image/png"})
            assert ok.status_code == 200 and ok.json()["top"], ok.text
        assert c.post("/v1/runs/vae/predict", files={"image": ("a.png", good, "image/png")}).status_code == 422
        # a run name only selects a loaded run: nothing from the URL reaches the file system
        for name in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "cls%00", "..", "CLS"):
            r = c.post(f"/v1/runs/{name}/predict", content=good, headers={"content-type": "image/png"})
            assert r.status_code == 404 and "error" in r.json(), (name, r.text)
        assert c.get("/nowhere").status_code == 404 and "error" in c.get("/nowhere").json()


def test_an_api_key_guards_the_api_not_the_page(served):
    png = sorted((served["cls"].parent.parent / "pngs" / "c0").glob("*.png"))[0].read_bytes()
    with _client({"cls": served["cls"]}, api_key="s3cret") as c:
        assert c.get("/v1/runs").status_code == 401
        assert c.get("/v1/runs", headers={"x-api-key": "wrong"}).status_code == 401
        assert c.get("/v1/runs", headers={"x-api-key": "s3cret"}).status_code == 200
        r = c.post("/v1/runs/cls/predict", content=png, headers={"content-type": "image/png",
                                                                  "authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200


def test_the_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    html = r.text
    for outside in ("http://", "https://", "//cdn", "@import", "fonts.googleapis"):
        assert outside not in html, outside
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html


def test_onnx_backend_answers_as_torch_does(served):
    pytest.importorskip("onnxruntime")
    from dcvkit.errors import ConfigError
    from dcvkit.serve.runs import load_run

    png = sorted((served["cls"].parent.parent / "pngs" / "c1").glob("*.png"))[0].read_bytes()
    answers = {}
    for backend in ("torch", "onnx"):
        run = load_run("cls", served["cls"], "cpu", backend)
        answers[backend] = run.run_batch([run.prepare(png, {"topk": 4})])[0]
    assert answers["onnx"]["top"][0]["class"] == answers["torch"]["top"][0]["class"]
    np.testing.assert_allclose(list(answers["onnx"]["probabilities"].values()),
                               list(answers["torch"]["probabilities"].values()), atol=1e-4)
    assert (served["cls"] / "cnn_tiny.onnx").is_file()  # dcv export's file, written once
    with pytest.raises(ConfigError, match="does not export"):
        load_run("seg", served["seg"], "cpu", "onnx")


def test_run_names_are_checked(served, tmp_path):
    from dcvkit.errors import ConfigError
    from dcvkit.serve.server import run_names

    assert list(run_names([str(served["cls"]), f"x={served['seg']}"])) == ["cls", "x"]
    with pytest.raises(ConfigError, match="no such run"):
        run_names([str(tmp_path / "missing")])
    with pytest.raises(ConfigError, match="two runs"):
        run_names([f"a={served['cls']}", f"a={served['seg']}"])
    with pytest.raises(ConfigError, match="run name"):
        run_names([f"a b={served['cls']}"])


def test_a_video_sent_to_a_detector_is_tracked_as_dcv_track_does(client, served, scene_image, tmp_path):
    from dcvkit.data.mot import open_source, write_video
    from dcvkit.tasks.configs import TrackConfig
    from dcvkit.tasks.track import VideoTracker

    det = need(served, "det")
    scene = np.asarray(Image.open(scene_image).convert("RGB"))
    frames = [np.roll(scene, 3 * k, axis=1) for k in range(8)]  # the items move right, 3 px a frame
    video = write_video(tmp_path / "clip.avi", frames, 10.0)
    r = client.post("/v1/runs/det/predict", files={"video": ("clip.avi", video.read_bytes(), "video/x-msvideo")},
                    params={"tracker": "sort"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["tracker"] == "sort" and len(got["frames"]) == 8 and got["tracks"] > 0
    stream = VideoTracker(det, TrackConfig(tracker="sort", device="cpu"))
    for f, (_, frame) in zip(got["frames"], open_source(video)):
        want = stream(frame)
        assert [t["id"] for t in f["tracks"]] == [int(i) for i in want.ids]
        np.testing.assert_allclose([t["box"] for t in f["tracks"]] or np.zeros((0, 4)), want.boxes, atol=0.02)
    bad = client.post("/v1/runs/det/predict", content=b"not a video", headers={"content-type": "video/mp4"})
    assert bad.status_code == 400 and "unreadable video" in bad.json()["error"]
    seg = client.post("/v1/runs/seg/predict", content=video.read_bytes(), headers={"content-type": "video/mp4"})
    assert seg.status_code == 415 and "takes images" in seg.json()["error"]


def test_only_small_images_decode_on_the_event_loop():
    from dcvkit.serve.app import decodes_inline

    assert decodes_inline(_png(np.zeros((28, 28), np.uint8)))
    bomb = _png(np.zeros((4000, 3000), np.uint8))  # a few kB that unpack to 12 megapixels: to a thread
    assert len(bomb) < 32 * 1024 and not decodes_inline(bomb)
    assert not decodes_inline(_png((np.random.default_rng(0).random((300, 300, 3)) * 255).astype(np.uint8)))
    assert not decodes_inline(b"not an image") and not decodes_inline(None)
    assert not decodes_inline(_png(np.zeros((28, 28), np.uint8))[:20])  # a cut PNG header: to the decoder
    from PIL import Image

    small, big = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (64, 48)).save(small, "JPEG")
    Image.new("L", (600, 400)).save(big, "JPEG")  # a JPEG's size comes from PIL's header reading
    assert decodes_inline(small.getvalue()) and not decodes_inline(big.getvalue())
