"""The ``pytest-mlops`` console script, assembled here from the command modules of each family.

Each family registers its subcommands with an ``add(subparsers)`` function (see
:mod:`pytest_mlops.commands`); :data:`COMMANDS` lists them in the order ``--help`` shows them.
Exit codes: 0 success, 1 a gate or verdict failed, 2 bad input (usage, config, data, report).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from pytest_mlops._version import __version__
from pytest_mlops.checks.latency import commands as latency_commands
from pytest_mlops.ci import add_init_ci
from pytest_mlops.commands import EXIT_OK, EXIT_USAGE, Subparsers, gates, report, schema
from pytest_mlops.deploy import commands as deploy_commands
from pytest_mlops.errors import MlopsError
from pytest_mlops.export import commands as export_commands
from pytest_mlops.monitor import run as monitor_run
from pytest_mlops.stages import add_stage

__all__ = ["COMMANDS", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]

#: each family's ``add(subparsers)``, in the order ``pytest-mlops --help`` lists them
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    report.add,
    gates.add,
    schema.add,
    deploy_commands.add,
    export_commands.add_export,
    add_init_ci,
    add_stage,
    monitor_run.add_monitor,
    latency_commands.add_latency,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``pytest-mlops`` argument parser with every family's subcommands."""
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
