"""The ``pytest-mlops`` console script. It calls library functions only.

Exit codes: 0 success, 1 a gate or verdict failed, 2 bad input (usage, config, data, report).
Each subcommand is one ``_cmd_*`` function registered in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pytest_mlops.errors import ConfigError, MlopsError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def _cmd_report(args: argparse.Namespace) -> int:
    from pytest_mlops.report.merge import load_reports, write_text
    from pytest_mlops.report.text import render_table

    view = load_reports(args.report)
    for line in render_table(view.entries):
        print(line)
    counts = {s: view.count(s) for s in ("passed", "failed", "inconclusive")}
    print(
        f"\n{view.total} results: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['inconclusive']} inconclusive - verdict {view.verdict.upper()}"
    )
    if args.json:
        import json

        from pytest_mlops.report.merge import merged_report

        text = json.dumps(merged_report(view), indent=2, allow_nan=False) + "\n"
        print(f"JSON report: {write_text(args.json, text)}")
    if args.markdown:
        from pytest_mlops.report.markdown import render_markdown

        print(f"Markdown report: {write_text(args.markdown, render_markdown(view))}")
    if args.html:
        from pytest_mlops.report.html import render_html

        print(f"HTML report: {write_text(args.html, render_html(view))}")
    return EXIT_OK if view.verdict == "passed" else EXIT_FAILED


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help="show JSON reports written by --mlops-report; render them as Markdown or HTML",
    )
    parser.add_argument(
        "report", nargs="+", help="path of a JSON report (several are merged: one per CI stage)"
    )
    parser.add_argument("--json", metavar="OUT.json", help="write the merged JSON report here")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the Markdown report here")
    parser.add_argument("--html", metavar="OUT.html", help="write the HTML report with plots here")
    parser.set_defaults(func=_cmd_report)


def _cmd_gates(args: argparse.Namespace) -> int:
    from pytest_mlops.config import SETTINGS
    from pytest_mlops.gates import GATE_KINDS

    print("settings ([tool.pytest_mlops] or mlops.toml):")
    for param in SETTINGS:
        print(f"  {param.name:<14} {param.type:<14} {param.help}")
    for kind in GATE_KINDS.values():
        print(f"\ngate kind {kind.name!r} (marker: {kind.marker}) - {kind.help}")
        for param in kind.params:
            default = "" if param.default in (None, ()) else f" [default: {param.default!r}]"
            choices = f" (one of {', '.join(param.choices)})" if param.choices else ""
            print(f"  {param.name:<14} {param.type:<14} {param.help}{choices}{default}")
    return EXIT_OK


def _add_gates(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("gates", help="list the settings and gate kinds a config may use")
    parser.set_defaults(func=_cmd_gates)


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


def _add_schema(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_deploy(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """package, push, promote, rollback, history, serve (pytest_mlops/deploy/commands.py)."""
    from pytest_mlops.deploy.commands import COMMANDS as deploy_commands

    for add in deploy_commands:
        add(sub)


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """export (pytest_mlops/export/commands.py)."""
    from pytest_mlops.export.commands import add_export

    add_export(sub)


def _add_init_ci(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """init-ci (pytest_mlops/ci.py)."""
    from pytest_mlops.ci import add_init_ci

    add_init_ci(sub)


def _add_stage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """stage (pytest_mlops/stages.py)."""
    from pytest_mlops.stages import add_stage

    add_stage(sub)


def _add_latency(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """latency (pytest_mlops/checks/latency/commands.py)."""
    from pytest_mlops.checks.latency.commands import add_latency

    add_latency(sub)


def _add_monitor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """monitor (pytest_mlops/monitor/run.py)."""
    from pytest_mlops.monitor.run import add_monitor

    add_monitor(sub)


COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_report,
    _add_gates,
    _add_schema,
    _add_deploy,
    _add_export,
    _add_init_ci,
    _add_stage,
    _add_monitor,
    _add_latency,
]


def build_parser() -> argparse.ArgumentParser:
    from pytest_mlops._version import __version__

    parser = argparse.ArgumentParser(
        prog="pytest-mlops", description="Gate, package, deploy and monitor ML models."
    )
    parser.add_argument("--version", action="version", version=f"pytest-mlops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; MlopsErrors print as one clear line and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        code = handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return code
    except MlopsError as exc:
        print(f"pytest-mlops {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"pytest-mlops {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
