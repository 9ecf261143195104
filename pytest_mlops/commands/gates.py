"""``pytest-mlops gates``: the settings and gate kinds a config may use."""

from __future__ import annotations

import argparse

from pytest_mlops.commands import EXIT_OK, Subparsers

__all__ = ["add"]


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


def add(sub: Subparsers) -> None:
    """Register the subcommand with *sub*."""
    parser = sub.add_parser("gates", help="list the settings and gate kinds a config may use")
    parser.set_defaults(func=_cmd_gates)
