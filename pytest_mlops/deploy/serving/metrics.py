"""Prometheus metrics of the server, rendered in the text exposition format."""

from __future__ import annotations

import bisect
import collections
import math
import threading
from collections.abc import Callable, Sequence

from .model import Flat
from .tensors import Tensor

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_VALUE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_MAX_LABELS = 64  # distinct predicted values counted before the rest go to "other"


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def observe_values(self, values: list[float]) -> None:
        counts, buckets, where = self.counts, self.buckets, bisect.bisect_left
        total, n = 0.0, 0
        for value in values:
            if value - value == 0:  # skip NaN and infinities (their difference is NaN)
                counts[where(buckets, value)] += 1
                total += value
                n += 1
        self.total += total
        self.n += n

    def render(self, name: str, labels: str) -> list[str]:
        sep = "," if labels else ""
        lines, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else repr(float(bound))
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
        lines.append(f"{name}_sum{{{labels}}} {self.total!r}")
        lines.append(f"{name}_count{{{labels}}} {self.n}")
        return lines


class Metrics:
    """Prometheus metrics, rendered in the text exposition format."""

    def __init__(self, model: str, version: str) -> None:
        self.base = f'model="{_esc(model)}",version="{_esc(version)}"'
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.batches = _Histogram(_BATCH_BUCKETS)
        self.rows = 0
        self.labels: dict[tuple[str, str], int] = {}
        self.values: dict[str, _Histogram] = {}
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = _Histogram(_LATENCY_BUCKETS)
        hist.observe(seconds)

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        """A gauge read when the metrics are rendered."""
        self.gauges[name] = (help, read)

    def batch(self, rows: int) -> None:
        self.batches.observe(rows)

    def predictions(self, outputs: Sequence[Tensor], flats: Sequence[Flat], rows: int) -> None:
        """Count predicted labels and bucket numeric predictions, once per batch."""
        for spec, (values, width, dims) in zip(outputs, flats, strict=False):
            if spec.datatype in ("FP32", "FP64", "FP16"):
                if len(dims) == 1 and width >= 2:
                    values = values[width - 1 :: width]  # a probability output's positive class
                hist = self.values.get(spec.name)
                if hist is None:
                    hist = self.values[spec.name] = _Histogram(_VALUE_BUCKETS)
                hist.observe_values(values)
            else:
                labels = self.labels
                # Counter keeps first-seen order, so "other" takes the same values as one by one.
                for value, count in collections.Counter(values).items():
                    key = (spec.name, str(value))
                    if key not in labels and len(labels) >= _MAX_LABELS:
                        key = (spec.name, "other")
                    labels[key] = labels.get(key, 0) + count
        self.rows += rows

    def render(self) -> str:
        b = self.base
        lines = [
            "# HELP mlops_requests_total Requests by endpoint and status code.",
            "# TYPE mlops_requests_total counter",
        ]
        for (endpoint, status), n in sorted(self.requests.items()):
            lines.append(f'mlops_requests_total{{{b},endpoint="{endpoint}",code="{status}"}} {n}')
        lines += [
            "# HELP mlops_request_duration_seconds Request latency, from parsed request to response.",
            "# TYPE mlops_request_duration_seconds histogram",
        ]
        for endpoint, hist in sorted(self.latency.items()):
            lines += hist.render("mlops_request_duration_seconds", f'{b},endpoint="{endpoint}"')
        lines += [
            "# HELP mlops_batch_rows Rows per ONNX Runtime call (dynamic batching).",
            "# TYPE mlops_batch_rows histogram",
            *self.batches.render("mlops_batch_rows", b),
            "# HELP mlops_inference_rows_total Rows predicted.",
            "# TYPE mlops_inference_rows_total counter",
            f"mlops_inference_rows_total{{{b}}} {self.rows}",
            "# HELP mlops_predictions_total Predicted labels by output and value.",
            "# TYPE mlops_predictions_total counter",
        ]
        for (output, value), n in sorted(self.labels.items()):
            lines.append(
                f'mlops_predictions_total{{{b},output="{_esc(output)}",value="{_esc(value)}"}} {n}'
            )
        lines += [
            "# HELP mlops_prediction_value Distribution of numeric predictions (the positive-class"
            " probability for a probability output).",
            "# TYPE mlops_prediction_value histogram",
        ]
        for output, hist in sorted(self.values.items()):
            lines += hist.render("mlops_prediction_value", f'{b},output="{_esc(output)}"')
        for name, (text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name}{{{b}}} {read()}"]
        return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
