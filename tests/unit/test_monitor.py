"""The drift monitor: verdicts, exit codes, the retraining command, webhooks with retries, no lost
trigger. Webhooks go to a real HTTP server on 127.0.0.1; drift is the real DriftProfile."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_mlops.checks.drift import DriftProfile
from pytest_mlops.cli import main
from pytest_mlops.errors import DataError
from pytest_mlops.monitor import (
    EXIT_ACTION_FAILED,
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_INCONCLUSIVE,
    EXIT_NO_DRIFT,
    MonitorOptions,
    PendingStore,
    Trigger,
    TriggerError,
    post_json,
    read_prediction_log,
    run_monitor,
)
from pytest_mlops.monitor.current import rows_of_record
from pytest_mlops.monitor.run import MonitorOutcome
from pytest_mlops.monitor.triggers import webhook_request
from pytest_mlops.report.json import load_report
from pytest_mlops.results import CheckResult

FEATURES = [
    "age",
    "workclass",
    "education_num",
    "marital_status",
    "occupation",
    "sex",
    "hours_per_week",
    "capital_gain",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, adult_train, adult_holdout) -> Path:
    """A profile of the training features; current data without and with drift."""
    out: Path = tmp_path_factory.mktemp("monitor")
    DriftProfile.fit(adult_train[FEATURES]).save(out / "profile.npz")
    same = adult_holdout[FEATURES].sample(4000, random_state=0)
    same.to_csv(out / "same.csv", index=False)
    shifted = same.copy()
    shifted["age"] = shifted["age"] + 12
    shifted["hours_per_week"] = shifted["hours_per_week"] * 1.5
    shifted.to_csv(out / "shifted.csv", index=False)
    return out


def columns_of(outcome: MonitorOutcome) -> list[dict[str, Any]]:
    assert outcome.result is not None, "the monitor gave no result"
    return [dict(row) for row in outcome.result.tables["columns"]]


def _options(data_dir: Path, tmp_path: Path, current: str, **kw) -> MonitorOptions:
    settings = {
        "profile": str(data_dir / "profile.npz"),
        "current": str(data_dir / current),
        "state": str(tmp_path / "state"),
        "report": str(tmp_path / "monitor.json"),
        "backoff_s": 0.01,
        "timeout_s": 2.0,
    }
    return MonitorOptions(**{**settings, **kw})


def _writer(target: Path) -> str:
    """A command that records the drift summary it was given, through the environment."""
    code = (
        "import json, os, sys; "
        f"open({str(target)!r}, 'w').write(json.dumps({{k: v for k, v in os.environ.items() "
        "if k.startswith('MLOPS_')}))"
    )
    return f'{sys.executable} -c "{code}"'


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


# --- verdicts and the command action -------------------------------------------------------------


def test_no_drift_exits_0_writes_the_report_and_triggers_nothing(data_dir, tmp_path):
    marker = tmp_path / "ran.json"
    log = Lines()
    outcome = run_monitor(
        _options(data_dir, tmp_path, "same.csv", on_drift_run=_writer(marker)), log=log
    )
    assert outcome.exit_code == EXIT_NO_DRIFT
    assert outcome.result is not None
    assert outcome.result.passed
    assert not marker.exists()
    assert log[0].startswith("monitor: NO DRIFT - drifted_share must be <=")
    data, entries = load_report(tmp_path / "monitor.json")
    assert entries[0].result.status == "passed"
    assert data["project"]["profile"].endswith("profile.npz")


def test_drift_runs_the_command_with_the_summary(data_dir, tmp_path):
    marker = tmp_path / "ran.json"
    options = _options(data_dir, tmp_path, "shifted.csv", on_drift_run=_writer(marker))
    outcome = run_monitor(options, log=Lines())
    assert outcome.exit_code == EXIT_DRIFT
    assert outcome.triggered == (f"command {options.on_drift_run!r}",)
    env = json.loads(marker.read_text())
    assert env["MLOPS_DRIFT_STATUS"] == "failed"
    assert set(env["MLOPS_DRIFT_COLUMNS"].split(",")) >= {"age", "hours_per_week"}
    assert env["MLOPS_DRIFT_REPORT"] == str(tmp_path / "monitor.json")
    assert PendingStore(tmp_path / "state").load() == []


def test_a_failing_command_is_kept_pending_and_delivered_by_the_next_run(data_dir, tmp_path):
    gate = tmp_path / "retrain-may-run"
    marker = tmp_path / "ran.json"
    command = (
        f'{sys.executable} -c "import pathlib, sys; p = pathlib.Path({str(gate)!r}); '
        f'sys.exit(0 if p.exists() else 7)"'
    )
    first = run_monitor(
        _options(data_dir, tmp_path, "shifted.csv", on_drift_run=command), log=Lines()
    )
    assert first.exit_code == EXIT_ACTION_FAILED
    assert "exited with status 7" in first.errors[0]
    (pending,) = PendingStore(tmp_path / "state").load()
    assert pending.attempts == 1
    assert "status 7" in pending.last_error
    # the next run still cannot deliver: still pending, exit 3 even without drift
    again = run_monitor(_options(data_dir, tmp_path, "same.csv", on_drift_run=command), log=Lines())
    assert again.exit_code == EXIT_ACTION_FAILED
    assert PendingStore(tmp_path / "state").load()[0].attempts == 2
    gate.touch()
    log = Lines()
    last = run_monitor(
        _options(data_dir, tmp_path, "same.csv", on_drift_run=_writer(marker)), log=log
    )
    assert last.exit_code == EXIT_NO_DRIFT
    assert any("delivered the pending trigger" in line for line in log)
    assert PendingStore(tmp_path / "state").load() == []


@pytest.mark.parametrize(
    ("current", "expected"),
    [("missing.csv", "--current: the file"), ("profile.npz", None)],
)
def test_bad_input_exits_2_and_never_triggers(data_dir, tmp_path, current, expected):
    marker = tmp_path / "ran.json"
    options = _options(data_dir, tmp_path, current, on_drift_run=_writer(marker))
    outcome = run_monitor(options, log=Lines())
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert not marker.exists()
    if expected:
        assert expected in outcome.errors[0]
        assert "missing.csv" in outcome.errors[0]


def test_a_corrupt_profile_is_bad_input(data_dir, tmp_path):
    bad = tmp_path / "profile.npz"
    bad.write_bytes(b"not a profile")
    options = replace(
        _options(data_dir, tmp_path, "shifted.csv", on_drift_run="true"), profile=str(bad)
    )
    outcome = run_monitor(options, log=Lines())
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert str(bad) in outcome.errors[0]


def _inconclusive(current, options) -> CheckResult:
    return CheckResult(
        name="drift",
        kind="drift",
        status="inconclusive",
        message="no column could be tested for drift",
    )


def test_inconclusive_triggers_only_when_told(data_dir, tmp_path):
    marker = tmp_path / "ran.json"
    options = _options(data_dir, tmp_path, "same.csv", on_drift_run=_writer(marker))
    outcome = run_monitor(options, compare=_inconclusive, log=Lines())
    assert outcome.exit_code == EXIT_INCONCLUSIVE
    assert not marker.exists()
    told = replace(options, trigger_on_inconclusive=True)
    assert run_monitor(told, compare=_inconclusive, log=Lines()).exit_code == EXIT_DRIFT
    assert json.loads(marker.read_text())["MLOPS_DRIFT_STATUS"] == "inconclusive"


# --- webhooks against a real local server --------------------------------------------------------


class Hook:
    """An HTTP server on 127.0.0.1 that answers with a script of (status, delay) and records."""

    def __init__(self, script: list[tuple[int, float]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((dict(self.headers), json.loads(body)))
                status, delay = hook.script.pop(0) if hook.script else (204, 0.0)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/retrain"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_webhook_retries_failures_with_exponential_backoff(data_dir, tmp_path):
    waits: list[float] = []
    with Hook([(500, 0.0), (503, 0.0), (204, 0.0)]) as hook:
        options = _options(data_dir, tmp_path, "shifted.csv", on_drift_webhook=hook.url)
        outcome = run_monitor(options, log=Lines(), sleep=waits.append)
    assert outcome.exit_code == EXIT_DRIFT
    assert 0.005 <= waits[0] <= 0.01
    assert 0.01 <= waits[1] <= 0.02
    assert len(hook.requests) == 3
    headers, body = hook.requests[-1]
    assert body["event"] == "pytest-mlops.drift"
    assert body["status"] == "failed"
    assert {"age", "hours_per_week"} <= set(body["drifted_columns"])
    assert headers["X-Pytest-Mlops-Trigger"] == body["id"]
    assert len({h["X-Pytest-Mlops-Trigger"] for h, _ in hook.requests}) == 1  # one trigger id


def test_webhook_timeout_is_retried(tmp_path):
    with Hook([(204, 1.5), (204, 0.0)]) as hook:
        status = post_json(
            hook.url,
            {"x": 1},
            {"Content-Type": "application/json"},
            retries=2,
            timeout_s=0.3,
            backoff_s=0.0,
            log=Lines(),
        )
    assert status == 204
    assert len(hook.requests) == 2


def test_a_webhook_that_keeps_failing_is_kept_and_not_triggered_twice(data_dir, tmp_path):
    log = Lines()
    with Hook([(500, 0.0)] * 3) as hook:
        options = _options(data_dir, tmp_path, "shifted.csv", on_drift_webhook=hook.url, retries=2)
        outcome = run_monitor(options, log=log, sleep=lambda s: None)
    assert outcome.exit_code == EXIT_ACTION_FAILED
    assert outcome.errors == (
        f"POST {hook.url} failed after 3 attempts; last error: HTTP 500 Internal Server Error",
    )
    assert any("kept as pending" in line for line in log)
    (pending,) = PendingStore(tmp_path / "state").load()
    # the next run delivers the pending trigger first and does not trigger the same hook again
    with Hook([]) as again:
        options = replace(options, on_drift_webhook=again.url)
        pending_store = PendingStore(tmp_path / "state")
        pending_store.save([replace(pending, target=again.url)])
        outcome = run_monitor(options, log=Lines(), sleep=lambda s: None)
    assert outcome.exit_code == EXIT_DRIFT
    assert len(again.requests) == 1
    assert again.requests[0][1]["id"] == pending.id
    assert pending_store.load() == []
    assert pending_store.path.exists()


def test_a_refused_webhook_is_not_retried(tmp_path):
    with Hook([(401, 0.0)]) as hook, pytest.raises(TriggerError) as info:
        post_json(hook.url, {}, {}, retries=3, backoff_s=0.0, log=Lines())
    assert len(hook.requests) == 1
    assert str(info.value) == (
        f"POST {hook.url} was refused: HTTP 401 Unauthorized "
        "(not retried: fix the URL, token or body)"
    )


def test_a_closed_port_fails_cleanly(tmp_path):
    with Hook([]) as hook:
        url = hook.url
    with pytest.raises(TriggerError, match=r"failed after 2 attempts; last error: .*refused"):
        post_json(url, {}, {}, retries=1, backoff_s=0.0, timeout_s=1.0, log=Lines())


def test_github_and_gitlab_bodies_and_tokens(monkeypatch):
    monkeypatch.setenv("DISPATCH_TOKEN", "s3cret")
    summary = {"status": "failed", "message": "2 of 8 columns drifted"}
    github = Trigger(
        "webhook",
        "https://api.example/dispatches",
        summary,
        webhook_format="github",
        token_env="DISPATCH_TOKEN",
        ref="release",
    )
    _url, body, headers = webhook_request(github)
    assert body == {"ref": "release"}
    assert headers["Authorization"] == "Bearer s3cret"
    gitlab = replace(github, webhook_format="gitlab")
    _, body, headers = webhook_request(gitlab)
    assert body["token"] == "s3cret"
    assert "Authorization" not in headers
    assert body["variables"]["MLOPS_RETRAIN"] == "1"
    assert body["variables"]["MLOPS_DRIFT_SUMMARY"] == "2 of 8 columns drifted"
    # the token is read when sending, never stored with the pending trigger
    assert "s3cret" not in json.dumps(gitlab.to_dict())
    monkeypatch.delenv("DISPATCH_TOKEN")
    with pytest.raises(TriggerError, match="'DISPATCH_TOKEN' is not set"):
        webhook_request(gitlab)


# --- the serving app's prediction log ------------------------------------------------------------


def _log_lines(frame, shift: float = 0.0) -> list[str]:
    lines = []
    for row in frame.to_dict(orient="records"):
        inputs = {k: [v + shift if k == "age" else v] for k, v in row.items()}
        lines.append(
            json.dumps(
                {
                    "ts": 1.0,
                    "model": "credit",
                    "version": 3,
                    "inputs": inputs,
                    "outputs": {"label": [1], "probabilities": [0.2, 0.8]},
                }
            )
        )
    return lines


def test_prediction_log_drift_is_detected(data_dir, tmp_path, adult_holdout):
    frame = adult_holdout[FEATURES].sample(3000, random_state=1)
    log_path = tmp_path / "predictions.jsonl"
    # the last line is cut: the server was writing it
    log_path.write_text("\n".join(_log_lines(frame, shift=15.0)) + "\n" + '{"ts": 1.0, "inpu')
    read = read_prediction_log(log_path)
    assert len(read) == 3000
    assert list(read.columns) == [*FEATURES, "output.label"]
    assert read["age"].tolist() == (frame["age"] + 15.0).tolist()
    outcome = run_monitor(_options(data_dir, tmp_path, str(log_path)), log=Lines())
    assert outcome.exit_code == EXIT_DRIFT
    drifted = {r["column"] for r in columns_of(outcome) if r["drifted"]}
    assert "age" in drifted
    assert "output.label" not in {r["column"] for r in columns_of(outcome)}


def test_a_single_tensor_models_log_is_spread_over_the_profile_columns(tmp_path):
    """The serving app's log of a model with one [n, 4] input: each row is a list of 4 values,
    compared with a profile of the 4 feature columns in the model's order."""
    import numpy as np
    import onnxruntime as ort
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from pytest_mlops.deploy.client import http_call
    from pytest_mlops.deploy.serving import ServingOptions, serve_in_thread
    from pytest_mlops.export import export_onnx
    from pytest_mlops.monitor.run import compare_with_profile

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(3000, 4)), columns=list("abcd"))
    X = reference.to_numpy(np.float32)
    model = tmp_path / "model.onnx"
    export_onnx(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), X[:5], model)
    (tensor,) = (i.name for i in ort.InferenceSession(str(model)).get_inputs())
    DriftProfile.fit(reference).save(tmp_path / "profile.npz")
    current = rng.normal(size=(1200, 4)).astype(np.float32)
    current[:, 2] += 0.5  # column c drifts
    log = tmp_path / "predictions.jsonl"
    served = ServingOptions(model=str(model), name="m", port=0, prediction_log=str(log))
    with serve_in_thread(served) as (url, _):
        for chunk in np.array_split(current, 12):
            body = {
                "inputs": [
                    {
                        "name": tensor,
                        "shape": list(chunk.shape),
                        "datatype": "FP32",
                        "data": chunk.ravel().tolist(),
                    }
                ]
            }
            assert http_call(url + "/v2/models/m/infer", "POST", body).status == 200
    options = MonitorOptions(
        profile=str(tmp_path / "profile.npz"),
        current=str(log),
        state=str(tmp_path / "state"),
        report=str(tmp_path / "monitor.json"),
        backoff_s=0.01,
        timeout_s=2.0,
    )
    outcome = run_monitor(options, log=Lines())
    assert outcome.exit_code == EXIT_DRIFT
    columns = {r["column"]: r["drifted"] for r in columns_of(outcome)}
    assert columns == {"a": False, "b": False, "c": True, "d": False}

    DriftProfile.fit(reference.assign(e=1.0)).save(tmp_path / "wide.npz")
    with pytest.raises(
        DataError,
        match=rf"one input tensor '{tensor}' with 4 values per row, "
        r"and the profile has 5 columns \(a, b, c, d, e\)",
    ):
        compare_with_profile(
            read_prediction_log(log), replace(options, profile=str(tmp_path / "wide.npz"))
        )


def test_a_broken_log_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"inputs": {"age": 30}}\nnot json\n{"inputs": {"age": 31}}\n')
    with pytest.raises(DataError, match=r"predictions.jsonl' line 2: not a JSON object"):
        read_prediction_log(path)


def test_record_shapes():
    assert rows_of_record({"age": 3, "sex": "Male"}) == [{"age": 3, "sex": "Male"}]
    assert rows_of_record({"inputs": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    oip = {
        "inputs": [
            {"name": "a", "shape": [2, 1], "datatype": "FP32", "data": [[1.0], [2.0]]},
            {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
        ]
    }
    assert rows_of_record(oip) == [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]
    with pytest.raises(DataError, match="'inputs' must be an object of columns"):
        rows_of_record({"inputs": 3})


# --- the command line and its config --------------------------------------------------------------


def test_cli_reads_monitor_settings_from_pyproject(data_dir, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran.json"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest_mlops.monitor]\n"
        f"profile = {json.dumps(str(data_dir / 'profile.npz'))}\n"
        f"current = {json.dumps(str(data_dir / 'same.csv'))}\n"
        f"on_drift_run = {json.dumps(_writer(marker))}\n"
        "report = 'build/monitor.json'\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["monitor"]) == EXIT_NO_DRIFT
    assert (tmp_path / "build" / "monitor.json").is_file()
    assert main(["monitor", "--current", str(data_dir / "shifted.csv")]) == EXIT_DRIFT
    assert marker.is_file()
    out = capsys.readouterr().out
    assert "monitor: DRIFT - drifted_share must be <=" in out


def test_cli_unknown_monitor_setting_is_a_usage_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "mlops.toml").write_text("[monitor]\nprofil = 'x.npz'\n")
    monkeypatch.chdir(tmp_path)
    assert main(["monitor"]) == 2
    err = capsys.readouterr().err
    assert "unknown monitor setting 'profil' - did you mean 'profile'?" in err


def test_cli_without_a_profile_says_how_to_give_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["monitor", "--current", "x.csv"]) == EXIT_BAD_INPUT
    assert (
        "no profile: pass --profile or set 'profile' in [tool.pytest_mlops.monitor]"
        in capsys.readouterr().out
    )


def test_a_log_is_compared_on_the_profile_columns_it_holds(data_dir, tmp_path, adult_holdout):
    frame = adult_holdout[FEATURES].drop(columns=["capital_gain"]).sample(2000, random_state=2)
    log_path = tmp_path / "predictions.jsonl"
    log_path.write_text("\n".join(_log_lines(frame)) + "\n")
    outcome = run_monitor(_options(data_dir, tmp_path, str(log_path)), log=Lines())
    assert outcome.exit_code == EXIT_NO_DRIFT
    compared = {r["column"] for r in columns_of(outcome)}
    assert compared == set(FEATURES) - {"capital_gain"}
    log_path.write_text('{"inputs": {"unrelated": 1}}\n')
    outcome = run_monitor(_options(data_dir, tmp_path, str(log_path)), log=Lines())
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert "has none of the profile's columns (age, workclass" in outcome.errors[0]


def test_overlapping_runs_do_not_share_the_state(data_dir, tmp_path):
    store = PendingStore(tmp_path / "state")
    marker = tmp_path / "ran.json"
    options = _options(data_dir, tmp_path, "shifted.csv", on_drift_run=_writer(marker))
    with store.locked():
        outcome = run_monitor(options, log=Lines())
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert not marker.exists()
    assert "another pytest-mlops monitor is running with the state" in outcome.errors[0]
    assert run_monitor(options, log=Lines()).exit_code == EXIT_DRIFT


def test_a_corrupt_pending_file_is_named(data_dir, tmp_path):
    store = PendingStore(tmp_path / "state")
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"triggers": [')
    outcome = run_monitor(_options(data_dir, tmp_path, "same.csv"), log=Lines())
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert f"the pending-trigger file {str(store.path)!r} is corrupt" in outcome.errors[0]


def test_an_unwritable_report_is_found_before_judging(data_dir, tmp_path):
    (tmp_path / "blocker").write_text("")
    marker = tmp_path / "ran"
    options = _options(
        data_dir,
        tmp_path,
        "shifted.csv",
        on_drift_run=_writer(marker),
        report=str(tmp_path / "blocker" / "report.json"),
    )
    log = Lines()
    outcome = run_monitor(options, log=log)
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert outcome.result is None
    assert "cannot write the monitor report (--report)" in outcome.errors[0]
    assert "blocker" in outcome.errors[0]
    assert not marker.exists()


def test_a_report_that_fails_late_does_not_lose_the_drift_trigger(data_dir, tmp_path, monkeypatch):
    import pytest_mlops.monitor.run as run_module
    from pytest_mlops.errors import OutputError

    def refuse(options, result):
        raise OutputError(f"cannot write the report {options.report!r}: No space left on device")

    monkeypatch.setattr(run_module, "_write_report", refuse)
    marker = tmp_path / "ran"
    options = _options(
        data_dir,
        tmp_path,
        "shifted.csv",
        on_drift_run=_writer(marker),
        report=str(tmp_path / "report.json"),
    )
    log = Lines()
    outcome = run_monitor(options, log=log)
    assert outcome.result is not None
    assert outcome.result.failed
    assert marker.exists()  # the drift trigger went out
    assert outcome.exit_code == EXIT_ACTION_FAILED
    assert any("No space left on device" in e for e in outcome.errors)
    assert not (tmp_path / "report.json").exists()
