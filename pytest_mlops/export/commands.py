"""``pytest-mlops export``: export a model to ONNX and check its parity on data.

::

    pytest-mlops export                                  # the config's model and current data
    pytest-mlops export credit_model:model --data data/holdout.csv.gz --target income -o m.onnx
    pytest-mlops export model.onnx --native credit_model:model --data holdout.csv   # check only

Exit codes: 0 exported (and parity holds), 1 parity fails, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops._progress import Progress
from pytest_mlops.errors import ConfigError

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.results import CheckResult

__all__ = ["add_export"]

EXIT_OK, EXIT_FAILED = 0, 1
SAMPLE_ROWS = 16


def _cmd_export(args: argparse.Namespace) -> int:
    from pytest_mlops.models.load import load_model
    from pytest_mlops.models.onnx import OnnxModel

    config = _config(args)
    base = config.base_dir if config else Path.cwd()
    spec = args.model or (config.settings.model if config else None)
    if not spec:
        raise ConfigError(
            "name the model ('package.module:factory' or an .onnx file) "
            "or run where mlops.toml / pyproject.toml sets 'model'"
        )
    progress = Progress(total=4 if args.parity else 3)
    try:
        progress.step(f"loading {spec}")
        model = load_model(spec, base_dir=base)
        data = _data(args, config, base)
        native = load_model(args.native, base_dir=base) if args.native else model
        if isinstance(model, OnnxModel) and not args.output:
            exported: Any = model
            result = _parity(args, native, model, data, progress, already_onnx=True)
        else:
            exported, result = _export_checked(args, model, native, data, base, progress)
    finally:
        progress.close()
    if result is not None and not result.passed:
        print(f"parity {result.status.upper()}: {result.message}")
        for line in result.details.splitlines()[1:]:
            print(f"  {line}")
        print(f"not written: {_output(args, base)} (pass --no-parity to write it unchecked)")
        return EXIT_FAILED
    _print_export(exported)
    if result is not None:
        print(f"parity {result.status.upper()}: {result.message}")
        for line in result.details.splitlines()[1:]:
            print(f"  {line}")
    return EXIT_OK


def _output(args: argparse.Namespace, base: Path) -> Path:
    return Path(args.output) if args.output else base / "build" / "model.onnx"


class _ParityFailed(Exception):
    """Raised inside the output's atomic write, so that a model that fails parity is not kept."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def _export_checked(
    args: argparse.Namespace,
    model: Any,
    native: Any,
    data: Dataset | None,
    base: Path,
    progress: Progress,
) -> tuple[Any, CheckResult | None]:
    """Export to a temporary file next to the output.

    It replaces the output only once the export, and the parity check when asked, succeed.
    """
    import dataclasses

    from pytest_mlops._files import atomic_file
    from pytest_mlops.export.base import export_onnx

    if data is None:
        raise ConfigError(
            "give --data (rows to take the input types from) "
            "or set 'current' or 'reference' in the config"
        )
    output = _output(args, base)
    try:
        with atomic_file(output, what="the ONNX model") as tmp:
            progress.step(f"exporting to {output}")
            exported = export_onnx(
                model,
                data.X.head(SAMPLE_ROWS),
                tmp,
                dtype=args.dtype,
                metadata=_metadata(args.metadata),
            )
            result = _parity(args, native, exported, data, progress, already_onnx=False)
            if result is not None and not result.passed:
                raise _ParityFailed(result)
    except _ParityFailed as failed:
        return None, failed.result
    return dataclasses.replace(exported, path=output), result


def _parity(
    args: argparse.Namespace,
    native: Any,
    exported: Any,
    data: Dataset | None,
    progress: Progress,
    *,
    already_onnx: bool,
) -> CheckResult | None:
    from pytest_mlops.export.parity import check_parity

    if not args.parity or data is None:
        return None
    if already_onnx and not args.native:
        raise ConfigError(
            "the model is already ONNX; pass --native "
            "'package.module:factory' to check parity against the original"
        )
    progress.step("checking parity")
    return check_parity(
        native,
        exported,
        data,
        batch_sizes=args.batch_sizes,
        random_rows=args.random_rows,
        progress=lambda note: progress.step(note, advance=False),
    )


def _print_export(exported: Any) -> None:
    from pytest_mlops.export.base import OnnxExport

    if isinstance(exported, OnnxExport):
        print(f"exported {exported.path} ({exported.size} bytes)")
        print(f"  sha256 {exported.sha256}")
        print(f"  inputs {exported.signature}")
        print(f"  output {exported.output}, dtype {exported.dtype}")


def _config(args: argparse.Namespace) -> ProjectConfig | None:
    from pytest_mlops.config import find_config_file, load_config

    here = Path.cwd()
    path = find_config_file(here, args.config)
    if path is None:
        return None
    return load_config(path, base_dir=path.parent)


def _data(args: argparse.Namespace, config: ProjectConfig | None, base: Path) -> Dataset | None:
    from pytest_mlops.data.loaders import load_dataset

    if args.data:
        target = args.target or (config.settings.target if config else None)
        return load_dataset(args.data, target=target, name="data")
    if config is None:
        return None
    settings = config.settings
    for which in ("current", "reference"):
        path = getattr(settings, which)
        if path:
            return load_dataset(
                path,
                target=settings.target,
                features=settings.features,
                name=which,
                encoding=settings.encoding,
            )
    return None


def _metadata(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--metadata {item!r}: expected KEY=VALUE, e.g. --metadata git_commit=3f2a9c1"
            )
        out[key] = value
    return out


def add_export(sub: Any) -> None:
    """Register ``pytest-mlops export`` on the CLI's subparsers."""
    parser = sub.add_parser(
        "export", help="export a model to ONNX and check that it decides like the original"
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="'package.module:factory' or an .onnx file (default: the config's model)",
    )
    parser.add_argument(
        "-o", "--output", help="the .onnx file to write (default: build/model.onnx)"
    )
    parser.add_argument("--data", help="CSV or Parquet rows (default: the config's current data)")
    parser.add_argument("--target", help="the label column of --data (for the metric delta)")
    parser.add_argument("--config", help="mlops.toml or pyproject.toml (default: found in .)")
    parser.add_argument("--native", help="the original model, when MODEL is an .onnx file")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="lineage field to stamp (repeat)"
    )
    parser.add_argument(
        "--no-parity", dest="parity", action="store_false", help="export only; skip the check"
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 37, 1024], help="parity batch sizes"
    )
    parser.add_argument(
        "--random-rows", type=int, default=50, help="random batches of rows (0: none)"
    )
    parser.set_defaults(func=_cmd_export)
