"""The serving app: OIP v2 endpoints, validation, limits, metrics, prediction log, batching."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from pytest_mlops.deploy.client import http_call
from pytest_mlops.deploy.serving import App, ServingOptions, openapi_document, serve_in_thread


@pytest.fixture(scope="module")
def model_path(tiny_template: Path) -> Path:
    return tiny_template / "model.onnx"


@pytest.fixture(scope="module")
def session(model_path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_path))


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App]]:
    log = tmp_path_factory.mktemp("serving") / "predictions.jsonl"
    options = ServingOptions(
        model=str(model_path),
        name="tiny",
        port=0,
        max_body_bytes=64 * 1024,
        prediction_log=str(log),
    )
    with serve_in_thread(options) as running:
        yield running


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def infer_body(session: ort.InferenceSession, X: np.ndarray) -> dict[str, Any]:
    name = session.get_inputs()[0].name
    return {
        "inputs": [
            {"name": name, "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}
        ]
    }


def at_once(call: Callable[[int], Any], n: int) -> list[Any]:
    """``call(0) ... call(n - 1)`` from n threads started together; their results in order."""
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_health_and_metadata(server: tuple[str, App], session: ort.InferenceSession) -> None:
    url, _ = server
    assert http_call(url + "/v2/health/live").status == 200
    assert http_call(url + "/v2/health/ready").status == 200
    meta = http_call(url + "/v2/models/tiny").json()
    assert meta["name"] == "tiny"
    assert meta["platform"] == "onnxruntime"
    assert [i["name"] for i in meta["inputs"]] == [i.name for i in session.get_inputs()]
    assert meta["inputs"][0] == {
        "name": session.get_inputs()[0].name,
        "datatype": "FP32",
        "shape": [-1, 4],
    }
    assert http_call(url + "/v2/models/tiny/versions/1/ready").status == 200


def test_predictions_match_onnxruntime_in_process(
    server: tuple[str, App], session: ort.InferenceSession
) -> None:
    url, _ = server
    X = rows(37)
    answer = http_call(
        url + "/v2/models/tiny/infer", "POST", {"id": "r1", **infer_body(session, X)}
    )
    assert answer.status == 200, answer.body
    payload = answer.json()
    assert payload["id"] == "r1"
    assert payload["model_name"] == "tiny"
    expected = session.run(None, {session.get_inputs()[0].name: X})
    outputs = {o["name"]: o for o in payload["outputs"]}
    for spec, want in zip(session.get_outputs(), expected, strict=True):
        got = outputs[spec.name]
        assert got["shape"] == list(np.asarray(want).shape)
        np.testing.assert_allclose(np.asarray(got["data"]).reshape(got["shape"]), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda b: b["inputs"][0].update(name="x9"),
            r"unknown input 'x9'; the model takes \['.+'\]",
        ),
        (
            lambda b: b["inputs"][0].update(datatype="INT64"),
            r"must have datatype 'FP32', got 'INT64'",
        ),
        (lambda b: b["inputs"][0].update(shape=[2, 3]), r"must have shape \[-1, 4\], got \[2, 3\]"),
        (lambda b: b["inputs"][0].update(shape=[3, 4]), r"shape \[3, 4\] needs 12 values, got 8"),
        (lambda b: b["inputs"][0]["data"].__setitem__(0, "x"), r"'data' must hold numbers"),
        (lambda b: b.update(inputs=[]), r"non-empty 'inputs' list"),
        (lambda b: b.update(outputs=[{"name": "nope"}]), r"'outputs' must be a list"),
        (lambda b: b["inputs"][0].update(shape=[2, 4.0]), r"'shape' must be a list of dimensions"),
        (lambda b: b["inputs"][0].update(shape=[2, True]), r"'shape' must be a list of dimensions"),
        (lambda b: b["inputs"][0]["data"].__setitem__(0, True), r"'data' must hold numbers"),
        (lambda b: b["inputs"][0].update(name=["x"]), r"unknown input \['x'\]"),
    ],
)
def test_bad_requests_get_a_400_naming_the_problem(
    server: tuple[str, App], session: ort.InferenceSession, mutate: Any, message: str
) -> None:
    url, _ = server
    body = infer_body(session, rows(2))
    mutate(body)
    answer = http_call(url + "/v2/models/tiny/infer", "POST", body)
    assert answer.status == 400
    assert re.search(message, answer.json()["error"]), answer.json()


def test_json_noop_answers_in_the_shape_of_an_inference(
    server: tuple[str, App], session: ort.InferenceSession
) -> None:
    url, _ = server
    body = infer_body(session, rows(3))
    real = http_call(url + "/v2/models/tiny/versions/1/infer", "POST", body)
    noop = http_call(url + "/v2/noop/json", "POST", body)
    assert real.status == noop.status == 200, (real.body, noop.body)

    def shape_of(payload: dict[str, Any]) -> list[tuple[str, str, list[int], int]]:
        return [(o["name"], o["datatype"], o["shape"], len(o["data"])) for o in payload["outputs"]]

    assert shape_of(noop.json()) == shape_of(real.json())
    assert noop.json()["model_name"] == "tiny"
    assert http_call(url + "/v2/noop/json", "POST", b"{not json").status == 400


def test_invalid_json_unknown_model_and_routes(server: tuple[str, App]) -> None:
    url, _ = server
    answer = http_call(url + "/v2/models/tiny/infer", "POST", b"{not json")
    assert answer.status == 400
    assert "not valid JSON" in answer.json()["error"]
    assert http_call(url + "/v2/models/other/infer", "POST", {}).status == 404
    assert http_call(url + "/v2/models/tiny/infer").status == 405
    assert http_call(url + "/nowhere").status == 404


def test_request_size_limit_is_a_413(
    server: tuple[str, App], session: ort.InferenceSession
) -> None:
    url, _ = server
    answer = http_call(url + "/v2/models/tiny/infer", "POST", infer_body(session, rows(3000)))
    assert answer.status == 413
    assert "limit is 65536" in answer.json()["error"]
    assert http_call(url + "/v2/health/live").status == 200  # the server lives on


def test_metrics_count_requests_and_predictions(
    model_path: Path, session: ort.InferenceSession
) -> None:
    options = ServingOptions(model=str(model_path), name="tiny", port=0)
    X = rows(50, seed=3)
    with serve_in_thread(options) as (url, _):
        for chunk in np.array_split(X, 5):
            assert (
                http_call(url + "/v2/models/tiny/infer", "POST", infer_body(session, chunk)).status
                == 200
            )
        http_call(url + "/v2/models/tiny/infer", "POST", b"[]")
        text = http_call(url + "/metrics").body.decode()
    labels = session.run(None, {session.get_inputs()[0].name: X})[0]
    label_name = session.get_outputs()[0].name
    for value in np.unique(labels):
        count = int((labels == value).sum())
        assert (
            f'mlops_predictions_total{{model="tiny",version="1",output="{label_name}",value="{value}"}} {count}'
            in text
        )
    assert 'mlops_requests_total{model="tiny",version="1",endpoint="infer",code="200"} 5' in text
    assert 'mlops_requests_total{model="tiny",version="1",endpoint="infer",code="400"} 1' in text
    assert (
        'mlops_request_duration_seconds_count{model="tiny",version="1",endpoint="infer"} 6' in text
    )
    assert 'mlops_inference_rows_total{model="tiny",version="1"} 50' in text
    # the positive-class probability, bucketed as Prometheus does (le: value <= bound)
    positive = session.run(None, {session.get_inputs()[0].name: X})[1][:, 1]
    output = session.get_outputs()[1].name
    for bound in (0.1, 0.5, 0.9, 1.0):
        assert (
            f'mlops_prediction_value_bucket{{model="tiny",version="1",output="{output}",'
            f'le="{bound}"}} {int((positive <= bound).sum())}'
        ) in text
    assert f'mlops_prediction_value_count{{model="tiny",version="1",output="{output}"}} 50' in text


def test_prediction_log_has_one_line_per_row(
    server: tuple[str, App], session: ort.InferenceSession
) -> None:
    url, app = server
    X = rows(4, seed=9)
    assert http_call(url + "/v2/models/tiny/infer", "POST", infer_body(session, X)).status == 200
    lines = Path(app.options.prediction_log or "").read_text().splitlines()[-4:]
    records = [json.loads(line) for line in lines]
    name = session.get_inputs()[0].name
    np.testing.assert_allclose([r["inputs"][name] for r in records], X, rtol=1e-6)
    labels, probabilities = session.run(None, {name: X})
    assert [r["outputs"][session.get_outputs()[0].name] for r in records] == labels.tolist()
    logged = [r["outputs"][session.get_outputs()[1].name] for r in records]
    np.testing.assert_allclose(logged, probabilities, rtol=1e-6)  # one [p0, p1] list per row
    assert all(r["model"] == "tiny" and r["version"] == "1" for r in records)


def test_concurrent_requests_are_batched_and_answered_correctly(
    model_path: Path, session: ort.InferenceSession
) -> None:
    options = ServingOptions(model=str(model_path), name="tiny", port=0, batch_delay_ms=20)
    inputs = [rows(1 + i % 3, seed=i) for i in range(24)]
    with serve_in_thread(options) as (url, _):
        answers = at_once(
            lambda i: http_call(
                url + "/v2/models/tiny/infer", "POST", infer_body(session, inputs[i])
            ).json(),
            len(inputs),
        )
        metrics = http_call(url + "/metrics").body.decode()
    name = session.get_inputs()[0].name
    for X, answer in zip(inputs, answers, strict=True):
        want = session.run(None, {name: X})[1]
        got = answer["outputs"][1]
        # a batch may take another SIMD path than a single row: float32 rounding only
        np.testing.assert_allclose(np.asarray(got["data"]).reshape(got["shape"]), want, atol=1e-6)
    found = re.search(r"mlops_batch_rows_count\{[^}]*\} (\d+)", metrics)
    assert found is not None, metrics
    calls = int(found.group(1))
    assert calls < len(inputs)  # a 20 ms window merges concurrent requests


def test_openapi_has_no_server_errors(server: tuple[str, App]) -> None:
    """schemathesis against the served OpenAPI document: nothing it sends causes a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok

    url, _ = server
    document = http_call(url + "/openapi.json").json()
    assert document == openapi_document("tiny")
    schema = schemathesis.openapi.from_dict(document)
    tested = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            case.call_and_validate(base_url=url, checks=[not_a_server_error])

        check()
        tested += 1
    assert tested == 7


def test_expect_100_continue_is_answered(
    server: tuple[str, App], session: ort.InferenceSession
) -> None:
    import socket

    url, _ = server
    host, port = url.split("//")[1].split(":")
    body = json.dumps(infer_body(session, rows(2))).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_string_labels_requested_outputs_and_ids_under_batching(tmp_path: Path) -> None:
    """A classifier with string classes (a BYTES output), the OIP ``outputs`` filter and request
    ids, with concurrent requests merged into batches: every answer is its own."""
    from sklearn.linear_model import LogisticRegression

    from pytest_mlops.export import export_onnx

    X = rows(300, seed=5)
    y = np.where(X[:, 0] + X[:, 1] > 0, "approve", "decline")
    export_onnx(LogisticRegression().fit(X, y), X[:5], tmp_path / "labels.onnx")
    session = ort.InferenceSession(str(tmp_path / "labels.onnx"))
    label_name, proba_name = (o.name for o in session.get_outputs())
    options = ServingOptions(model=str(tmp_path / "labels.onnx"), name="labels", port=0)
    inputs = [rows(1 + i % 4, seed=100 + i) for i in range(16)]
    with serve_in_thread(options) as (url, _):

        def call(i: int) -> Any:
            body: dict[str, Any] = {"id": f"req-{i}", **infer_body(session, inputs[i])}
            if i % 2:
                body["outputs"] = [{"name": label_name}]
            return http_call(url + "/v2/models/labels/infer", "POST", body)

        answers = at_once(call, len(inputs))
        metrics = http_call(url + "/metrics").body.decode()
    for i, (X_i, answer) in enumerate(zip(inputs, answers, strict=True)):
        assert answer.status == 200, answer.body
        payload = answer.json()
        assert payload["id"] == f"req-{i}"
        outputs = {o["name"]: o for o in payload["outputs"]}
        assert list(outputs) == ([label_name] if i % 2 else [label_name, proba_name])
        want_labels, want_proba = session.run(None, {session.get_inputs()[0].name: X_i})
        assert outputs[label_name]["datatype"] == "BYTES"
        assert outputs[label_name]["shape"] == [len(X_i)]
        assert outputs[label_name]["data"] == want_labels.tolist()
        if not i % 2:
            got = outputs[proba_name]
            np.testing.assert_allclose(
                np.asarray(got["data"]).reshape(got["shape"]), want_proba, atol=1e-6
            )
    every = np.concatenate(
        [session.run(None, {session.get_inputs()[0].name: X_i})[0] for X_i in inputs]
    )
    for value in ("approve", "decline"):
        assert (
            f'mlops_predictions_total{{model="labels",version="1",output="{label_name}",'
            f'value="{value}"}} {int((every == value).sum())}'
        ) in metrics


def test_head_answers_the_get_headers_without_a_body(server: tuple[str, App]) -> None:
    """HEAD then GET on one keep-alive connection: the HEAD answer stops after its headers."""
    import socket

    url, _ = server
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"HEAD /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    assert head.startswith(b"HTTP/1.1 200")
    assert length == len(b'{"ready":true}')
    assert rest.startswith(b"HTTP/1.1 200")  # the GET's answer comes next, not a body
    assert rest.endswith(b'\r\n\r\n{"ready":true}')


def test_limits_come_from_flags_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_mlops.deploy.serving import parse_args

    defaults = parse_args(["--model", "m.onnx"])
    assert defaults == ServingOptions(model="m.onnx")
    assert (defaults.header_timeout, defaults.max_body_bytes, defaults.max_connections) == (
        10.0,
        8 << 20,
        512,
    )
    monkeypatch.setenv("MLOPS_SERVE_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("MLOPS_SERVE_MAX_IN_FLIGHT", "7")
    options = parse_args(["--model", "m.onnx", "--max-headers", "12", "--no-batching"])
    assert (options.header_timeout, options.max_in_flight, options.max_headers) == (2.5, 7, 12)
    assert options.batching is False
    monkeypatch.setenv("MLOPS_SERVE_MAX_CONNECTIONS", "many")
    with pytest.raises(SystemExit) as exit:
        parse_args([])
    assert exit.value.code == 2
    assert "MLOPS_SERVE_MAX_CONNECTIONS='many' is not a valid int" in capsys.readouterr().err
    monkeypatch.delenv("MLOPS_SERVE_MAX_CONNECTIONS")
    with pytest.raises(SystemExit):
        parse_args(["--max-body-bytes", "0"])
    assert "--max-body-bytes must be >= 1, got 0" in capsys.readouterr().err


def test_a_model_that_cannot_be_served_exits_2_saying_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlops.deploy.serving", "--model", str(tmp_path / "bad.onnx"),
         "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot serve '{tmp_path / 'bad.onnx'}'" in done.stderr
    assert "Traceback" not in done.stderr


def test_metrics_show_connections_and_requests_in_flight(server: tuple[str, App]) -> None:
    url, _ = server
    text = http_call(url + "/metrics").body.decode()
    assert re.search(r'mlops_open_connections\{model="tiny",version="1"\} [1-9]', text)
    assert 'mlops_in_flight_requests{model="tiny",version="1"} 0' in text
