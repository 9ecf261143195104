"""The command line of the server (``python -m serving`` in the image).

Options, with ``MLOPS_SERVE_<NAME>`` environment variables as defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from .options import LIMITS, ServingOptions
from .responses import short
from .server import run_server

__all__ = ["main", "parse_args"]

# field -> help, for the options that are not limits
_OPTIONS = {
    "model": "the ONNX model file",
    "name": "the model's name in the URL (/v2/models/NAME)",
    "version": "the model version it reports (--model-version)",
    "host": "the address to listen on",
    "port": "the port to listen on (0: any free one)",
    "max_batch_rows": "rows per ONNX Runtime call at most (dynamic batching)",
    "batch_delay_ms": "how long a batch waits for more requests",
    "threads": "ONNX Runtime intra-op threads (0: its default)",
    "prediction_log": "append every served row to this JSON-lines file",
}


def _env(name: str) -> str | None:
    return os.environ.get(f"MLOPS_SERVE_{name.upper()}") or None


def _add(parser: argparse.ArgumentParser, field: dataclasses.Field[Any], help: str) -> None:
    default = field.default if field.default is not dataclasses.MISSING else "model.onnx"
    kind = type(default) if default is not None else str
    flag = "--model-version" if field.name == "version" else "--" + field.name.replace("_", "-")
    raw = _env(field.name)
    try:
        value = kind(raw) if raw is not None else default
    except ValueError:
        parser.error(f"MLOPS_SERVE_{field.name.upper()}={raw!r} is not a valid {kind.__name__}")
    parser.add_argument(flag, dest=field.name, type=kind, default=value, help=f"{help} ({value})")


def parse_args(argv: Sequence[str] | None = None) -> ServingOptions:
    """Options from the command line, falling back to ``MLOPS_SERVE_*`` environment variables."""
    p = argparse.ArgumentParser(prog="serving", description="Serve an ONNX model over OIP v2 REST.")
    fields = {f.name: f for f in dataclasses.fields(ServingOptions)}
    for name, help in {**_OPTIONS, **LIMITS}.items():
        _add(p, fields[name], help)
    batching = _env("batching") != "0"
    p.add_argument("--no-batching", dest="batching", action="store_false", default=batching)
    p.add_argument("--noop", action="store_true", help="serve only the no-op endpoint (benchmarks)")
    values = vars(p.parse_args(argv))
    for name in (
        "max_body_bytes",
        "max_header_bytes",
        "max_headers",
        "max_connections",
        "max_in_flight",
    ):
        if values[name] < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {values[name]}")
    return ServingOptions(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m serving``: 0 after a clean shutdown, 2 if it cannot serve."""
    options = parse_args(argv)
    try:
        run_server(options)
    except OSError as exc:
        print(f"serving: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(
            f"serving: cannot serve {options.model!r}: {type(exc).__name__}: {short(exc)}",
            file=sys.stderr,
        )
        return 2
    return 0
