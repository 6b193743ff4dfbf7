"""The ASGI app of ``dcv serve`` (FastAPI): the JSON API, its OpenAPI document and the page.

* ``GET /``: the page (one self-contained HTML file: no CDN, no web fonts, no build step; its Content
  Security Policy lets it reach nothing but this server);
* ``GET /v1/runs``: what is loaded; ``POST /v1/runs/{name}/predict``: one answer (schemas in
  :mod:`dcvkit.serve.schemas`); ``GET /healthz`` (the process answers), ``GET /readyz`` (every run's worker
  is up); ``GET /docs`` is FastAPI's Swagger page, which loads its scripts from a CDN: the API's own page
  is ``/``.

Every error is JSON ``{"error": "one line"}`` with a 4xx status: 400 an unreadable image, 401 a missing or
wrong API key, 404 an unknown run or path, 413 an upload over the limit, 415 a content type that is no
image, 422 a bad option. A run name in a URL only selects among the loaded runs: nothing from a request
reaches the file system.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import io
import json
import struct
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Mapping

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from dcvkit.errors import ConfigError, DcvError
from dcvkit.serve import schemas
from dcvkit.serve.batching import Batcher
from dcvkit.serve.runs import ServedRun

MAX_UPLOAD_MB = 16.0
#: uploads this small, of at most INLINE_DECODE_PIXELS by their header, are decoded on the event loop (a
#: 28x28 PNG: ~0.05 ms, less than a thread hop); others in a worker thread, so that decoding a photo (or a
#: small file that unpacks to many pixels) never stalls the other requests
INLINE_DECODE_BYTES = 32 * 1024
INLINE_DECODE_PIXELS = 256 * 256


def decodes_inline(data: bytes | None) -> bool:
    """Whether an upload is small enough, in bytes and in the pixels its header claims, to decode inline."""
    if data is None or len(data) > INLINE_DECODE_BYTES:
        return False
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":  # PNG: the size sits in IHDR
        w, h = struct.unpack(">II", data[16:24])
        return w * h <= INLINE_DECODE_PIXELS
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:  # the header only (PIL's open: ~0.1 ms of the event loop)
            return im.size[0] * im.size[1] <= INLINE_DECODE_PIXELS
    except Exception:  # noqa: BLE001 - not an image: the decoder in the thread says what is wrong
        return False


#: the page may load and call nothing but this server (images it draws are data: or blob: URLs)
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; media-src 'self' blob:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


class Problem(Exception):
    """A request that gets a 4xx: the status and one line saying what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes, announced or not."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the upload is {int(declared) / 1e6:.1f} MB, over the limit of {limit / 1e6:.1f} MB; "
                           "send a smaller file (or start dcv serve with a larger --max-upload-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the upload is over the limit of {limit / 1e6:.1f} MB; send a smaller file")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Request.body() caches: form() parses it from there (starlette reads _body)
    return body


async def read_request(request: Request, run: ServedRun, limit: int
                       ) -> tuple[bytes | None, dict[str, Any], str, str]:
    """(image or video bytes or None, options, a name for the upload in messages, its content type) from any
    accepted request form."""
    options: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_capped(request, limit)
    if not body:
        return None, options, "request", ""
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=32, max_part_size=limit)
        data, name, ftype = None, "upload", ""
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                if key not in ("image", "video", "file"):
                    raise Problem(422, f"multipart field '{key}' holds a file; send the image as field 'image'")
                ftype = (value.content_type or "").lower()
                if ftype and not ftype.startswith(("image/", "video/")) and ftype != "application/octet-stream":
                    raise Problem(415, f"{value.filename or 'upload'}: content type {ftype} is not an image; "
                                       "send a PNG, JPEG, BMP, GIF, WebP or TIFF file (a video to a detector)")
                data, name = await value.read(), (value.filename or "upload")[:80]
            else:
                options[key] = value
        return data, options, name, ftype
    if ctype == "application/json":
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise Problem(400, f"the JSON body does not parse ({str(e)[:80]}); send an object such as "
                               '{"image": "<base64>"}') from None
        if not isinstance(payload, dict):
            raise Problem(400, 'the JSON body must be an object such as {"image": "<base64>", "topk": 3}')
        image = payload.pop("image", None)
        options.update(payload)
        if image is None:
            return None, options, "request", ""
        if not isinstance(image, str):
            raise Problem(400, "'image' must be a base64 string (or a data: URL)")
        try:
            data = base64.b64decode(image.split(",", 1)[1] if image.startswith("data:") else image, validate=True)
        except (binascii.Error, ValueError):
            raise Problem(400, "'image' is not valid base64; encode the file's bytes") from None
        return data, options, "the JSON image", "image/*"
    if ctype.startswith(("image/", "video/")) or ctype == "application/octet-stream":
        return body, options, "upload", ctype
    raise Problem(415, f"content type '{ctype or 'none'}' is not accepted; send multipart/form-data (field 'image'), "
                       "application/json with a base64 'image', or the image bytes as image/png, image/jpeg, ...")


def create_app(runs: Mapping[str, ServedRun], *, max_batch: int = 32, max_wait_ms: float = 2.0,
               max_upload_mb: float = MAX_UPLOAD_MB, api_key: str | None = None) -> FastAPI:
    """The app serving ``runs`` (name -> loaded run), one :class:`Batcher` each. ``api_key``: required on
    /v1/ as ``X-API-Key`` or ``Authorization: Bearer``; the page, /healthz and /readyz stay open."""
    limit = int(max_upload_mb * 1024 * 1024)
    batchers = {name: Batcher(r.run_batch, max_batch, max_wait_ms, name) for name, r in runs.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for b in batchers.values():
            b.close()

    app = FastAPI(title="dcvkit", version="1", lifespan=lifespan, redoc_url=None,
                  description="dcv serve: trained dcvkit runs behind one JSON API. Every error is "
                              '{"error": "one line"} with a 4xx status.')
    app.state.batchers = batchers
    app.state.runs = runs

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise Problem(401, "missing or wrong API key; send it as the X-API-Key header")

    def get_run(name: str) -> ServedRun:
        if name not in runs:
            raise Problem(404, f"no run named '{name[:60]}' is loaded; loaded: {', '.join(runs)}")
        return runs[name]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = "no such path; the API: GET /v1/runs, POST /v1/runs/{name}/predict" if exc.status_code == 404 else \
            str(exc.detail)
        return _error(exc.status_code, msg)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return _error(422, f"{'.'.join(map(str, first.get('loc', ())))}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: still one JSON line
        return _error(500, f"internal error ({type(exc).__name__}: {str(exc)[:200]}); the server keeps serving")

    err = {s: {"model": schemas.Error} for s in (400, 401, 404, 413, 415, 422)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = resources.files("dcvkit.serve").joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-store"})

    @app.get("/healthz", response_model=schemas.Health, summary="the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}},
             summary="every run is loaded and its worker is up")
    async def readyz() -> JSONResponse:
        ready = all(b.alive for b in batchers.values())
        return JSONResponse({"ready": ready, "runs": list(runs)}, status_code=200 if ready else 503)

    @app.get("/v1/runs", response_model=schemas.Runs, responses={401: err[401]}, summary="the loaded runs")
    async def list_runs(request: Request) -> JSONResponse:
        check_key(request)
        return JSONResponse({"runs": [{**r.describe(), "batching": batchers[n].stats()} for n, r in runs.items()]})

    @app.post("/v1/runs/{name}/predict", response_model=schemas.PredictResult, responses=err,
              openapi_extra={"requestBody": schemas.REQUEST_BODY}, summary="one prediction from a loaded run",
              description="Options (a run's list: GET /v1/runs) come as query parameters, multipart fields or "
                          "JSON keys. Answers by task: classes with probabilities (and a saliency PNG), boxes, "
                          "a mask PNG, people with keypoints, generated PNGs.")
    async def predict(name: str, request: Request) -> JSONResponse:
        check_key(request)
        run = get_run(name)
        data, options, upload, ctype = await read_request(request, run, limit)
        if run.accepts == "none" and data is not None:
            raise Problem(422, f"run '{name}' generates images: send options only, no image")
        video = ctype.startswith("video/")
        if video and not run.takes_video:
            raise Problem(415, f"{upload}: a video; a {run.task} run takes images (videos go to a detector run, "
                               "which tracks them)")
        try:
            prepare = run.prepare_video if video else run.prepare
            if not video and (data is None or decodes_inline(data)):  # faster than a hop to a thread and back
                item = prepare(data, options, upload)
            else:
                item = await run_in_threadpool(prepare, data, options, upload)
            answer = await asyncio.wrap_future(batchers[name].submit(item))
        except ConfigError as e:
            raise Problem(422, str(e)) from None
        except DcvError as e:  # DataError among them: the upload
            raise Problem(400, str(e)) from None
        return JSONResponse(answer)

    async def predict_route(request: Request) -> JSONResponse:
        return await predict(request.path_params["name"], request)

    # The handler reads its request itself, so it is also mounted as a plain Starlette route ahead of the
    # documented one: that skips FastAPI's per-request dependency solving and request wrapping, which py-spy
    # put at 15% of the server's CPU per request under batched load (docs/results.md, issue 26). The OpenAPI
    # document still describes the route above; errors go through the same exception handlers.
    app.router.routes.insert(0, Route("/v1/runs/{name}/predict", predict_route, methods=["POST"]))
    return app


__all__ = ["create_app", "read_capped", "read_request", "Problem", "MAX_UPLOAD_MB", "PAGE_CSP"]
