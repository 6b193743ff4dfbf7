"""The API's JSON, one schema per task's answer (pydantic models: FastAPI writes them into the OpenAPI
document; the server builds plain dicts of this shape and the contract test checks them against it)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, Field


class Error(BaseModel):
    error: str = Field(description="one line: what is wrong and what to do")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    runs: list[str]


class RunInfo(BaseModel):
    name: str = Field(description="the name in /v1/runs/{name}/predict")
    task: str
    model: str
    backend: Literal["torch", "onnx"]
    classes: list[str]
    accepts: Literal["image", "none"] = Field(description="what a request sends: an image, or only options")
    input: dict[str, Any] = Field(description="channels and the training size [height, width]")
    options: dict[str, dict[str, Any]] = Field(description="the request options: type, default, bounds, help")
    batching: dict[str, Any] = Field(description="the run's batcher: max_batch, max_wait_ms, batches, mean_batch")
    keypoints: Optional[list[str]] = None
    skeleton: Optional[list[list[int]]] = None
    latent_dim: Optional[int] = None
    conditional: Optional[bool] = None


class Runs(BaseModel):
    runs: list[RunInfo]


class _Answer(BaseModel):
    run: str
    batch: int = Field(description="how many requests shared this forward pass")
    network_ms: float = Field(description="milliseconds of that forward pass and its post-processing (a "
                                          "generator's draw, a video's tracking: all of it)")


class ClassProbability(BaseModel):
    class_: str = Field(alias="class")
    probability: float


class Saliency(BaseModel):
    method: str
    class_: str = Field(alias="class")
    png: str = Field(description="base64 RGBA PNG at the model's input size: colour and opacity grow with attribution")
    degenerate: Optional[str] = None


class ClassifyResult(_Answer):
    task: Literal["classify"]
    top: list[ClassProbability]
    probabilities: dict[str, float]
    saliency: Optional[Saliency] = None


class Box(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in the uploaded image's pixels")
    class_: str = Field(alias="class")
    class_id: int
    score: float


class Track(BaseModel):
    id: int = Field(description="the track's id, the same object in every frame")
    box: list[float]
    class_: str = Field(alias="class")
    score: float


class Frame(BaseModel):
    frame: int = Field(description="from 1")
    tracks: list[Track]


class DetectResult(_Answer):
    task: Literal["detect"]
    width: int
    height: int
    boxes: list[Box] = Field(description="an image's detections (empty for a video)")
    tracker: Optional[str] = Field(None, description="a video: the tracker")
    fps: Optional[float] = None
    tracks: Optional[int] = Field(None, description="a video: how many distinct tracks")
    frames: Optional[list[Frame]] = Field(None, description="a video: every frame's tracks")


class SegmentResult(_Answer):
    task: Literal["segment"]
    width: int
    height: int
    mask_png: Optional[str] = Field(None, description="base64 palette PNG whose pixel values are class ids")
    overlay_png: Optional[str] = None
    pixels: Optional[dict[str, int]] = None
    reconstruction_png: Optional[str] = None


class Person(BaseModel):
    box: list[float]
    score: float
    keypoints: list[list[float]] = Field(description="per keypoint [x, y, presence probability]")


class PoseResult(_Answer):
    task: Literal["pose"]
    width: int
    height: int
    people: list[Person]


class GenerateResult(_Answer):
    task: Literal["generate"]
    images: list[str] = Field(description="base64 PNGs")
    interpolation: Optional[list[str]] = None


PredictResult = Union[ClassifyResult, DetectResult, SegmentResult, PoseResult, GenerateResult]

#: what POST /v1/runs/{name}/predict accepts (the OpenAPI request body; the handler reads the request itself)
REQUEST_BODY = {
    "required": False,
    "description": "an image (a video, for a detector run: tracked) as a multipart file (field 'image' or "
                   "'video', other fields are options), as JSON "
                   "{\"image\": base64, option: value, ...}, or as the raw bytes with Content-Type image/...; "
                   "a generator's request sends options only (query string or JSON)",
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "format": "binary"}, "video": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "description": "base64, optionally as a data: URL"}},
            "additionalProperties": True}},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "video/*": {"schema": {"type": "string", "format": "binary",
                               "description": "a detector run tracks a video (MP4, AVI, WebM, MOV)"}},
    },
}

__all__ = ["Error", "Health", "Ready", "RunInfo", "Runs", "PredictResult", "ClassifyResult", "DetectResult",
           "SegmentResult", "PoseResult", "GenerateResult", "REQUEST_BODY"]
