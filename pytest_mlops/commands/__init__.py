"""The subcommands of ``pytest-mlops``, one module per family; :mod:`pytest_mlops.cli` assembles them.

Each module has an ``add(subparsers)`` function that registers its subcommands, each with a
handler ``func(args) -> exit code`` that calls library functions only. Exit codes: 0 success,
1 a gate or verdict failed (or a deploy was refused), 2 bad input.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Subparsers"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: what ``ArgumentParser.add_subparsers()`` returns (argparse gives its class no public name)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
