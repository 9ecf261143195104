"""Markdown and HTML reports from CheckResults; the HTML is looked at in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlops.cli import main
from pytest_mlops.report.html import render_html, wilson_interval
from pytest_mlops.report.json import ReportEntry, build_report, load_report, write_report
from pytest_mlops.report.markdown import COMMENT_MARKER, render_markdown
from pytest_mlops.report.merge import ReportView, load_reports, merge_reports
from pytest_mlops.report.svg import nice_ticks
from pytest_mlops.results import CheckResult

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REPORT = ROOT / "examples" / "credit_scoring" / "build" / "mlops-report.json"


# --- fixture results with the tables each family produces ----------------------------------------


def _champion() -> CheckResult:
    return CheckResult(
        name="champion",
        kind="champion",
        status="failed",
        message="roc_auc: candidate - production must be >= -0.005: 95% interval [-0.021, -0.009]",
        metric="roc_auc_difference",
        value=-0.015,
        op=">=",
        bound=-0.005,
        tables={
            "comparison": [
                {
                    "metric": "roc_auc",
                    "candidate": 0.890,
                    "baseline": 0.905,
                    "difference": -0.015,
                    "ci_low": -0.021,
                    "ci_high": -0.009,
                },
                {
                    "metric": "balanced_accuracy",
                    "candidate": 0.770,
                    "baseline": 0.765,
                    "difference": 0.005,
                    "ci_low": -0.002,
                    "ci_high": 0.012,
                },
            ]
        },
    )


def _fairness() -> CheckResult:
    return CheckResult(
        name="fairness_sex",
        kind="fairness",
        status="inconclusive",
        message="demographic_parity_ratio must be >= 0.8: interval [0.31, 0.97] straddles the bound",
        metric="demographic_parity_ratio",
        value=0.62,
        op=">=",
        bound=0.8,
        tables={
            "groups": [
                {
                    "group": "Female",
                    "n": 5421,
                    "selection_rate": 0.11,
                    "tpr": 0.55,
                    "fpr": 0.03,
                    "accuracy": 0.92,
                    "excluded": False,
                },
                {
                    "group": "Male",
                    "n": 10860,
                    "selection_rate": 0.25,
                    "tpr": 0.62,
                    "fpr": 0.09,
                    "accuracy": 0.83,
                    "excluded": False,
                },
                {
                    "group": "Other",
                    "n": 12,
                    "selection_rate": 0.25,
                    "tpr": None,
                    "fpr": None,
                    "accuracy": 0.75,
                    "excluded": True,
                },
            ],
            "disparities": [
                {
                    "metric": "demographic_parity_ratio",
                    "value": 0.62,
                    "ci_low": 0.31,
                    "ci_high": 0.97,
                    "bound": 0.8,
                    "status": "inconclusive",
                },
            ],
        },
    )


def _drift(adult_train, adult_holdout) -> CheckResult:
    hist_rows: list[dict[str, Any]] = []
    column_rows: list[dict[str, Any]] = []
    for column in ("age", "hours_per_week"):
        ref = adult_train[column].to_numpy(float)
        cur = adult_holdout[column].to_numpy(float) + (8.0 if column == "age" else 0.0)
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=20)
        r, _ = np.histogram(ref, edges)
        c, _ = np.histogram(cur, edges)
        hist_rows += [
            {"column": column, "bin": float(edges[i]), "reference": int(r[i]), "current": int(c[i])}
            for i in range(len(r))
        ]
        column_rows.append(
            {
                "column": column,
                "type": "numeric",
                "test": "ks",
                "statistic": 0.2,
                "p_value": 1e-12,
                "p_adjusted": 2e-12,
                "effect": 0.4 if column == "age" else 0.01,
                "effect_name": "wasserstein_norm",
                "threshold": 0.1,
                "drifted": column == "age",
            }
        )
    sex = {"column": "sex", "bin": "Female", "reference": 10771, "current": 5421}
    hist_rows += [sex, {"column": "sex", "bin": "Male", "reference": 21790, "current": 10860}]
    return CheckResult(
        name="drift",
        kind="drift",
        status="failed",
        message="drifted share must be <= 0.2: measured 0.5 (1 of 2 columns)",
        metric="drifted_share",
        value=0.5,
        op="<=",
        bound=0.2,
        tables={"columns": column_rows, "histograms": hist_rows},
    )


def _latency() -> CheckResult:
    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 64):
        samples = rng.gamma(4.0, 0.1 * batch**0.5, 2000)
        counts, edges = np.histogram(samples, bins=25)
        rows += [
            {"batch_size": batch, "bin_ms": float(edges[i]), "count": int(counts[i])}
            for i in range(len(counts))
        ]
    return CheckResult.threshold(
        name="latency",
        kind="latency",
        metric="p99_ms",
        value=1.4,
        max=2.0,
        context={"device": "cpu"},
        tables={
            "batches": [
                {
                    "batch_size": 1,
                    "p50_ms": 0.38,
                    "p90_ms": 0.6,
                    "p99_ms": 0.9,
                    "throughput": 2600.0,
                    "n": 2000,
                },
                {
                    "batch_size": 64,
                    "p50_ms": 3.1,
                    "p90_ms": 4.8,
                    "p99_ms": 7.2,
                    "throughput": 20000.0,
                    "n": 2000,
                },
            ],
            "histogram": rows,
        },
    )


@pytest.fixture
def view(adult_train, adult_holdout) -> ReportView:
    accuracy = CheckResult.threshold(
        name="accuracy",
        kind="accuracy",
        metric="roc_auc",
        value=0.905,
        min=0.88,
        context={"n": 16281, "split": "current"},
    )
    results = [accuracy, _champion(), _fairness(), _drift(adult_train, adult_holdout), _latency()]
    entries = [
        ReportEntry(
            nodeid=f"pyproject.toml::{r.name}", outcome="passed" if r.passed else "failed", result=r
        )
        for r in results
    ]
    report = build_report(entries, exitstatus=1)
    return merge_reports([(report, entries)], ["report.json"])


# --- Markdown ------------------------------------------------------------------------------------


def test_markdown_has_verdict_gate_table_and_champion_delta(view):
    text = render_markdown(view)
    lines = text.splitlines()
    assert lines[0] == COMMENT_MARKER
    assert lines[1].startswith(
        "## ❌ pytest-mlops: FAILED — 5 checks (2 passed, 2 failed, 1 inconclusive)"
    )
    assert (
        "| ✅ | **accuracy** | accuracy | roc_auc=0.905 | >= 0.88 | `pyproject.toml::accuracy` |"
        in lines
    )
    # the reviewer's table: candidate, production, signed delta and its interval per metric
    assert "| ❌ | champion | roc_auc | 0.89 | 0.905 | -0.015 | [-0.021, -0.009] |" in lines
    assert (
        "| ❌ | champion | balanced_accuracy | 0.77 | 0.765 | +0.005 | [-0.002, +0.012] |" in lines
    )
    assert "- ⚠️ **fairness_sex** (inconclusive): demographic_parity_ratio must be >= 0.8" in text
    # drifted columns come first in the folded table; histograms are left to the HTML report
    columns_at = text.index("**columns**")
    assert text.index("| age |", columns_at) < text.index("| hours_per_week |", columns_at)
    assert "**histograms**" not in text
    assert text.count("<details>") == text.count("</details>") == 4


def test_a_failed_gate_explains_pytests_exit_status_itself(view):
    # pytest exited 1 because gates failed: the failing gates are named, nothing else is blamed
    assert "outside the gates" not in render_markdown(view)
    assert "outside the gates" not in render_html(view)
    passing = [e for e in view.entries if e.result.passed]
    report = build_report(passing, exitstatus=1)
    alone = merge_reports([(report, passing)], ["report.json"])
    assert "- pytest exited with status 1 (tests failed)" in render_markdown(alone)
    assert "pytest exited with status 1 (tests failed)" in render_html(alone)


def test_markdown_escapes_pipes_and_stays_under_the_comment_limit(view):
    wide = CheckResult(
        name="wide",
        kind="data",
        status="failed",
        message="a | b\nc",
        tables={"violations": [{"column": f"c{i}", "why": "x" * 200} for i in range(3000)]},
    )
    entries = [*view.entries, ReportEntry("t::wide", "failed", wide)]
    text = render_markdown(ReportView(entries=tuple(entries), verdict="failed"), max_rows=3000)
    assert len(text) <= 60_000
    assert "Details omitted to stay under 60,000 characters" in text
    assert "a \\| b c" in text
    short = render_markdown(ReportView(entries=tuple(entries), verdict="failed"))
    assert "… 2985 more rows in the JSON and HTML reports" in short


# --- HTML ----------------------------------------------------------------------------------------


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for k, n in ((3, 10), (596, 5421), (0, 12), (12, 12)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k / n, n)
        assert low == pytest.approx(ci.low, abs=1e-9)
        assert high == pytest.approx(ci.high, abs=1e-9)


def test_nice_ticks_cover_the_range_in_round_steps():
    assert nice_ticks(0.0, 1.0, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-0.021, 0.012, 4) == [-0.02, -0.01, 0.0, 0.01]
    assert nice_ticks(0.0, float("nan")) == []


def test_html_is_self_contained_and_plots_every_family(view):
    page = render_html(view)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    # nothing fetched from the network: the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
    for heading in ("Gates", "Candidate vs production", "Fairness", "Drift", "Latency", "Tables"):
        assert f"<h2>{heading}</h2>" in page
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    found = [re.search(r"<title>(.*?)</title>", s) for s in svgs]
    titles = [m.group(1) for m in found if m is not None]
    assert len(titles) == len(svgs)
    assert "champion: candidate minus production, 95% interval" in titles
    assert "fairness_sex: selection_rate per group" in titles
    assert "age: reference vs current" in titles
    assert "sex: reference vs current" in titles
    assert "latency: latency of batch size 64 (ms)" in titles
    # the drifted column is drawn first, and each drawn share is reference/current normalised
    assert page.index("age: reference vs current") < page.index(
        "hours_per_week: reference vs current"
    )
    assert "Female current: 0.333<" in page  # 5421 / (5421 + 10860)
    assert len(page.encode()) < 2_000_000


def test_html_of_an_empty_report_says_so():
    page = render_html(ReportView(entries=(), verdict="passed"))
    assert "No mlops results were recorded." in page


# --- CLI -----------------------------------------------------------------------------------------


def _write(tmp_path: Path, view: ReportView, name: str = "report.json") -> Path:
    return write_report(tmp_path / name, build_report(view.entries, exitstatus=1))


def test_cli_report_writes_markdown_and_html_and_keeps_the_table(view, tmp_path, capsys):
    path = _write(tmp_path, view)
    code = main(
        [
            "report",
            str(path),
            "--markdown",
            str(tmp_path / "r.md"),
            "--html",
            str(tmp_path / "out" / "r.html"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "pyproject.toml::champion" in out
    assert "verdict FAILED" in out
    assert (tmp_path / "r.md").read_text().startswith(COMMENT_MARKER)
    assert "<h2>Drift</h2>" in (tmp_path / "out" / "r.html").read_text()


def test_cli_report_merges_one_report_per_stage(view, tmp_path, capsys):
    first = write_report(tmp_path / "a.json", build_report(view.entries[:1], exitstatus=0))
    second = write_report(tmp_path / "b.json", build_report(view.entries[1:2], exitstatus=1))
    merged = load_reports([first, second])
    assert [e.result.name for e in merged.entries] == ["accuracy", "champion"]
    assert merged.verdict == "failed"
    assert merged.exitstatus == 1
    assert main(["report", str(first)]) == 0
    assert "verdict PASSED" in capsys.readouterr().out
    # the merged report is itself a report (what the deploy's package step reads)
    merged_path = tmp_path / "merged.json"
    assert main(["report", str(first), str(second), "--json", str(merged_path)]) == 1
    data, entries = load_report(merged_path)
    assert [e.result.name for e in entries] == ["accuracy", "champion"]
    assert data["summary"]["verdict"] == "failed"
    assert data["sources"] == [str(first), str(second)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (lambda text: text[: len(text) // 2], "is not valid JSON (truncated or corrupted?)"),
        (lambda text: text.replace('"version": 2', '"version": 99'), "has format version 99"),
        (lambda text: '{"hello": 1}', "is not a pytest-mlops report"),
    ],
)
def test_cli_report_prints_a_bad_report_cleanly(view, tmp_path, capsys, content, expected):
    path = _write(tmp_path, view)
    path.write_text(content(path.read_text()))
    assert main(["report", str(path), "--html", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-mlops report: error: the report {str(path)!r}") or (
        err.startswith(f"pytest-mlops report: error: {str(path)!r}")
    )
    assert expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.html").exists()


def test_cli_report_on_an_unwritable_output_names_it(view, tmp_path, capsys):
    path = _write(tmp_path, view)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", str(path), "--markdown", str(blocker / "r.md")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the rendering {str(blocker / 'r.md')!r}" in err
    assert "is a file, not a directory" in err


# --- headless Chromium ---------------------------------------------------------------------------


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI"):
        pytest.fail(
            "CI needs Debian's chromium to render the HTML report: scripts/install-chromium.sh"
        )
    return found


def render_in_chromium(
    page: Path, shot: Path, size: tuple[int, int] = (1280, 2400)
) -> tuple[np.ndarray, list[str]]:
    """Screenshot *page* headless; return its pixels and the console lines Chromium logged."""
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (bash scripts/install-chromium.sh)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--screenshot={shot}",
                f"--window-size={size[0]},{size[1]}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert shot.is_file(), (
        f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return read_png(shot.read_bytes()), console


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB(A) non-interlaced PNG (what Chromium writes) to an array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8, "only 8-bit images"
    assert color in (2, 6), "only RGB or RGBA"
    channels = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(stride, dtype=np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind == 1:  # sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1) & 0xFF
        else:  # 3 average, 4 paeth depend on the decoded pixel to the left: plain ints are fastest
            raw_line, up = line.tolist(), prev.tolist()
            done = [0] * stride
            for x in range(stride):
                a = done[x - channels] if x >= channels else 0
                b = up[x]
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    c = up[x - channels] if x >= channels else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                done[x] = (raw_line[x] + pred) & 0xFF
            cur = np.array(done, dtype=np.int32)
        out[y] = cur
    return out.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


def _share_of(pixels: np.ndarray, hex_color: str, tolerance: int = 24) -> float:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(pixels.astype(int) - rgb).max(axis=2) <= tolerance).mean())


def test_html_report_draws_in_headless_chromium(view, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(view), encoding="utf-8")
    pixels, console = render_in_chromium(page, tmp_path / "shot.png")
    assert console == [], f"console messages while rendering: {console}"
    assert pixels.shape[:2] == (2400, 1280)
    # not blank: many colours, and the plots' own colours are on screen
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 50
    assert _share_of(pixels, "#4c78a8") > 0.002  # reference bars, candidate dots
    assert _share_of(pixels, "#f58518") > 0.0005  # current bars
    assert _share_of(pixels, "#c62828") > 0.0002  # failed pills, bounds


def test_chromium_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined()</script></body></html>")
    pixels, console = render_in_chromium(page, tmp_path / "shot.png", size=(320, 240))
    assert any("notDefined is not defined" in line for line in console)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) == 1  # blank page: one colour


def test_the_example_report_renders_small(tmp_path):
    if not EXAMPLE_REPORT.is_file():
        pytest.skip("the example has not been run (scripts/main-job.sh writes its report)")
    view = load_reports([EXAMPLE_REPORT])
    page = render_html(view)
    assert len(page.encode()) < 2_000_000
    assert json.loads(EXAMPLE_REPORT.read_text())["summary"]["total"] == view.total
    assert render_markdown(view).startswith(COMMENT_MARKER)


def test_failures_come_first_and_text_bounds_are_drawn(view):
    text = render_markdown(view)
    assert text.index("**champion**") < text.index("**fairness_sex**") < text.index("**accuracy**")
    fairness = next(e.result for e in view.entries if e.result.name == "fairness_sex")
    rows = [{**fairness.tables["disparities"][0], "bound": ">= 0.8"}]
    result = CheckResult(
        **{**fairness.__dict__, "tables": {**fairness.tables, "disparities": rows}}
    )
    page = render_html(
        ReportView(entries=(ReportEntry("t::f", "failed", result),), verdict="failed")
    )
    assert "<title>bound 0.8</title>" in page


def test_real_drift_and_fairness_results_render(
    tmp_path, credit_pipeline, adult_train, adult_holdout
):
    """The families' own results (not fixtures) on UCI Adult: drawn, small, no console error."""
    from pytest_mlops import load_dataset, load_model
    from pytest_mlops.checks.drift import DriftProfile
    from pytest_mlops.checks.fairness import check_fairness

    features = [c for c in adult_train.columns if c != "income"]
    shifted = adult_holdout[features].copy()
    shifted["age"] = shifted["age"] + 10
    drift = DriftProfile.fit(adult_train[features]).compare(shifted)
    data = load_dataset(adult_holdout, target="income", sensitive=["race"])
    fairness = check_fairness(
        load_model(credit_pipeline),
        data,
        sensitive="race",
        metric="demographic_parity_ratio",
        min=0.8,
        n_resamples=100,
    )
    entries = [
        ReportEntry("t::drift", "failed", drift),
        ReportEntry("t::fairness", "failed", fairness),
    ]
    view = merge_reports([(build_report(entries, exitstatus=1), entries)])
    page = render_html(view)
    assert len(page.encode()) < 2_000_000
    assert "age: reference vs current" in page
    assert '<span class="drifted">drifted</span>' in page
    assert "fairness: selection_rate per group" in page
    md = render_markdown(view)
    assert "| age | numeric |" in md
    path = tmp_path / "real.html"
    path.write_text(page, encoding="utf-8")
    pixels, console = render_in_chromium(path, tmp_path / "real.png")
    assert console == []
    assert _share_of(pixels, "#f58518") > 0.0005
