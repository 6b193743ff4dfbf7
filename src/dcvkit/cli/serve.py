"""``dcv serve RUN [RUN ...]``: trained runs as a web page and a JSON API (parses, then calls dcvkit.serve)."""

from __future__ import annotations

import argparse

from dcvkit.cli.common import RAW, add_device, add_seed


def build(p: argparse.ArgumentParser, command: str) -> None:
    p.formatter_class = RAW
    p.description = (
        "Loads each run once (weights only) and serves it until Ctrl-C: the page at / (pick a run, drop an image: "
        "the class with its probabilities and a saliency overlay, the boxes, the mask, the skeletons; samples and "
        "an interpolation slider for a generator; one self-contained file that works offline) and the JSON API "
        "(GET /v1/runs; POST /v1/runs/NAME/predict with a multipart 'image', JSON with a base64 'image', or the "
        "raw bytes; options as query parameters; /healthz, /readyz; the OpenAPI document at /openapi.json). "
        "Concurrent requests to a run are gathered into one forward pass (dynamic batching: --max-batch, "
        "--max-wait-ms; --max-batch 1 serves one request at a time). Binds 127.0.0.1 unless --host says "
        "otherwise; uploads are capped (--max-upload-mb) and decoded by dcvkit's checked decoder (a decompression "
        "bomb, a truncated file or a non-image gets a 4xx JSON error and the server keeps serving). docs/serve.md "
        "has the API.\n"
        "examples:\n  dcv serve runs/classify/exp runs/detect/yolo\n"
        "  dcv serve cnn=runs/classify/exp --backend onnx --port 8080\n"
        "  dcv serve runs/classify/exp --host 0.0.0.0 --api-key $(openssl rand -hex 16)\n"
        "  curl -F image=@shoe.png 'http://127.0.0.1:8000/v1/runs/exp/predict?topk=3'")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a run directory (or .pt) of dcv classify|detect|segment|pose|generate train, as RUN or "
                        "NAME=RUN (the name in the URL; default: the run folder's name)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free one, printed)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="run the models in PyTorch or ONNX Runtime (classifiers, yolo, generators: the run's "
                        "dcv export file, written first when missing) (default: torch)")
    p.add_argument("--max-batch", type=int, default=32,
                   help="most requests in one forward pass (default: 32; 1: no batching)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long the first request of a batch waits for others (default: 2 ms)")
    p.add_argument("--max-upload-mb", type=float, default=16.0, help="largest upload accepted (default: 16 MB)")
    p.add_argument("--api-key", default=None,
                   help="require this key (X-API-Key header) on /v1/ (default: $DCV_API_KEY, else none)")
    p.add_argument("--threads", type=int, default=0,
                   help="threads PyTorch computes with (default 0: one less than the cores, at least 1; the "
                        "event loop and decoding need a core; ONNX Runtime keeps its own)")
    add_device(p)
    add_seed(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from dcvkit.errors import ConfigError

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in [0, 65535]")
    if args.max_batch < 1 or args.max_wait_ms < 0 or args.max_upload_mb <= 0 or args.threads < 0:
        raise ConfigError("--max-batch must be >= 1, --max-wait-ms >= 0, --max-upload-mb > 0 and --threads >= 0")
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"dcv serve needs {e.name}: pip install 'dcvkit[serve]'") from None
    import torch

    from dcvkit.engine.runtime import resolve_device
    from dcvkit.serve.server import serve

    torch.manual_seed(args.seed)
    serve(args.runs, host=args.host, port=args.port, backend=args.backend, device=str(resolve_device(args.device)),
          max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_upload_mb=args.max_upload_mb,
          api_key=args.api_key, threads=args.threads)
    return 0
