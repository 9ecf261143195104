"""``pytest-mlops schema``: infer a schema file from data, or check data against one."""

from __future__ import annotations

import argparse

from pytest_mlops.commands import EXIT_FAILED, EXIT_OK, Subparsers
from pytest_mlops.errors import ConfigError

__all__ = ["add"]


def _cmd_schema(args: argparse.Namespace) -> int:
    from pytest_mlops.data.loaders import load_dataset
    from pytest_mlops.data.schema import check_schema, infer_schema

    data = load_dataset(args.data, target=args.target, encoding=args.encoding)
    if args.action == "infer":
        schema = infer_schema(data, max_categories=args.max_categories)
        if args.output:
            path = schema.save(args.output)
            print(f"wrote {path}: {len(schema.columns)} columns from {data.n_rows} rows")
        else:
            print(schema.to_json(), end="")
        return EXIT_OK
    if not args.schema:
        raise ConfigError("schema check: give the schema file, e.g. --schema schema.json")
    result = check_schema(data, args.schema, mostly=args.mostly)
    print(f"{result.status.upper()}: {result.message}")
    if result.details:
        print(result.details)
    return EXIT_OK if result.passed else EXIT_FAILED


def add(sub: Subparsers) -> None:
    """Register the subcommand with *sub*."""
    parser = sub.add_parser(
        "schema", help="infer a reviewable schema file from data, or check data against one"
    )
    parser.add_argument("action", choices=("infer", "check"), help="what to do")
    parser.add_argument("data", help="the dataset: CSV (optionally compressed) or Parquet")
    parser.add_argument(
        "-o", "--output", help="infer: write the schema here, JSON or .yaml (default: stdout)"
    )
    parser.add_argument("-s", "--schema", help="check: the schema file to check against")
    parser.add_argument("--target", help="the label column (recorded in the schema)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of a CSV file")
    parser.add_argument(
        "--max-categories",
        type=int,
        default=50,
        help="infer: text columns with at most this many values get a category set",
    )
    parser.add_argument(
        "--mostly", type=float, help="check: share of rows every tolerant rule must hold for"
    )
    parser.set_defaults(func=_cmd_schema)
