"""``pytest-mlops report``: show JSON reports; render them as Markdown or HTML."""

from __future__ import annotations

import argparse

from pytest_mlops.commands import EXIT_FAILED, EXIT_OK, Subparsers

__all__ = ["add"]


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


def add(sub: Subparsers) -> None:
    """Register the subcommand with *sub*."""
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
