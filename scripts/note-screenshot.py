"""Screenshot a merge-request note: the report's Markdown rendered as a note, in headless Chromium.

    .venv/bin/python scripts/note-screenshot.py build/mlops-report.md docs/images/mr-note.png

The Markdown is rendered by markdown-it-py (CommonMark with tables and raw HTML, as GitLab's
renderer treats the report's tables and <details>), framed like a note, and photographed at the
note's height by Debian's chromium (scripts/install-chromium.sh). Used for docs/ci.md.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STYLE = """
body { margin: 0; background: #fbfafd; font: 14px/1.5 "DejaVu Sans", sans-serif; color: #333238; }
.note { margin: 16px; border: 1px solid #dcdcde; border-radius: 4px; background: #fff; }
.head { padding: 8px 16px; border-bottom: 1px solid #ececef; color: #626168; }
.head b { color: #333238; }
.body { padding: 4px 16px 12px; }
h2 { font-size: 17px; margin: 8px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #dcdcde; padding: 3px 8px; text-align: left; }
th { background: #f6f6f7; }
code { background: #f0f0f2; padding: 0 3px; border-radius: 3px; font-size: 12px; }
details { margin: 2px 0; } summary { cursor: pointer; }
sub { color: #737278; }
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        sys.exit("note-screenshot: chromium is needed: bash scripts/install-chromium.sh")
    return found


def _run(args: list[str], profile: str) -> str:
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-background-networking", f"--user-data-dir={profile}"]  # fmt: skip
    done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        sys.exit(f"note-screenshot: chromium failed: {done.stderr[-1500:]}")
    return done.stdout


def page(markdown: str, author: str) -> str:
    """The note as an HTML page."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        sys.exit("note-screenshot: needs markdown-it-py (pip install markdown-it-py)")
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    return (
        f"<!doctype html><meta charset=utf-8><style>{STYLE}</style>"
        f"<div class=note id=note><div class=head><b>{html.escape(author)}</b> commented"
        f"</div><div class=body>{body}</div></div>"
        "<script>document.getElementById('note').dataset.height ="
        " document.documentElement.scrollHeight</script>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("markdown", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--author", default="pytest-mlops bot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.html"
        note.write_text(page(args.markdown.read_text(encoding="utf-8"), args.author), "utf-8")
        dom = _run([f"--window-size={args.width},800", "--dump-dom", note.as_uri()], tmp)
        match = re.search(r'data-height="(\d+)"', dom)
        height = int(match.group(1)) if match else 1200
        args.png.parent.mkdir(parents=True, exist_ok=True)
        shot = f"--screenshot={args.png.resolve()}"
        _run([f"--window-size={args.width},{height}", shot, note.as_uri()], tmp)
    print(f"wrote {args.png} ({args.width}x{height}, {args.png.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
