"""Timing backends: how one inference is run and timed on each runtime and device.

An :class:`Engine` binds a model to a device; ``engine.prepare(batch)`` builds the inputs once (on
the device, outside the timed region) and returns a :class:`Timed` whose ``time_runs`` times
back-to-back inferences. Host timing uses ``time.perf_counter_ns``; PyTorch on CUDA uses CUDA
events. Asking for CUDA and getting a CPU session is an error, never a silently wrong number.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_mlops.checks.latency._fingerprint import package_versions
from pytest_mlops.errors import CheckError, DataError, ModelError, did_you_mean

if TYPE_CHECKING:
    import numpy as np

    from pytest_mlops.models.base import Model

__all__ = ["Engine", "Timed", "describe", "open_engine", "parse_device"]

DEVICES = ("cpu", "cuda")


class Timed(Protocol):
    """One prepared batch, ready to be run and timed."""

    timer: str

    def time_runs(self, k: int, *, sync_each: bool = True) -> list[int]:
        """Run *k* inferences back to back; return each one's latency in nanoseconds.

        ``sync_each=False`` lets a device queue the runs (offline scenario); host backends are
        synchronous either way.
        """
        ...

    def run_once(self) -> None:
        """One inference, finished (device synchronised) on return."""
        ...


class HostTimed:
    """``fn()`` timed by ``time.perf_counter_ns`` around a synchronous call."""

    timer = "perf_counter_ns"

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.run_once = fn

    def time_runs(self, k: int, *, sync_each: bool = True) -> list[int]:
        fn = self.fn
        clock = time.perf_counter_ns
        out = [0] * k
        for i in range(k):
            start = clock()
            fn()
            out[i] = clock() - start
        return out


class CudaEventTimed:
    """``fn()`` timed by a pair of CUDA events recorded on the current stream around it."""

    timer = "cuda-event"

    def __init__(self, fn: Callable[[], Any], device: Any) -> None:
        import torch

        self.fn = fn
        self.device = device
        self._torch = torch

    def time_runs(self, k: int, *, sync_each: bool = True) -> list[int]:
        torch = self._torch
        fn = self.fn
        stream = torch.cuda.current_stream(self.device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(k)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(k)]
        for start, end in zip(starts, ends, strict=True):
            start.record(stream)
            fn()
            end.record(stream)
            if sync_each:  # single stream: the next query waits for this one to finish
                end.synchronize()
        torch.cuda.synchronize(self.device)
        return [int(s.elapsed_time(e) * 1e6) for s, e in zip(starts, ends, strict=True)]

    def run_once(self) -> None:
        self.fn()
        self._torch.cuda.synchronize(self.device)


@dataclass
class Engine:
    """A model bound to a device: what runs, where, and how it is timed."""

    model: Model
    backend: str
    device: str
    prepare: Callable[[Any], Timed]
    providers: tuple[str, ...] = ()
    threads: int | None = None
    gpu_name: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        self.cleanup.close()


def describe(model: Any) -> str:
    """``"onnx model 'tiny'"``: how messages name a model."""
    text = getattr(model, "describe", None)
    return str(text()) if callable(text) else f"{model.kind} model {model.name!r}"


def parse_device(device: str) -> tuple[str, int | None]:
    """``"cpu"`` -> ``("cpu", None)``; ``"cuda"``/``"cuda:1"`` -> ``("cuda", 0)``/``("cuda", 1)``."""
    if not isinstance(device, str):
        raise CheckError(f"device must be 'cpu' or 'cuda', got {device!r}")
    kind, _, index = device.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return "cpu", None
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    raise CheckError(
        f"unknown device {device!r}{did_you_mean(kind, DEVICES)}; "
        "valid devices are 'cpu', 'cuda' and 'cuda:<index>'"
    )


def open_engine(
    source: Any, *, device: str, threads: int | None = None, cuda_graphs: bool = False
) -> Engine:
    """Bind *source* (anything :func:`~pytest_mlops.load_model` takes) to *device*."""
    kind, index = parse_device(device)
    if threads is not None and threads < 1:
        raise CheckError(f"threads must be a positive whole number, got {threads!r}")
    if cuda_graphs and kind != "cuda":
        raise CheckError("cuda_graphs=True needs device='cuda'")
    onnx_bytes = _onnx_bytes(source)
    if onnx_bytes is not None:
        return _onnx_engine(onnx_bytes, None, kind, index, threads)
    from pytest_mlops.models import load_model

    model = load_model(source)
    if model.kind == "onnx":
        return _onnx_engine(None, model, kind, index, threads)
    if model.kind == "pytorch":
        return _torch_engine(model, kind, index, threads, cuda_graphs)
    if cuda_graphs:
        raise CheckError("cuda_graphs=True needs a PyTorch model")
    return _host_engine(model, kind, threads)


# --- helpers -------------------------------------------------------------------------------


def _onnx_bytes(source: Any) -> bytes | None:
    """The serialised model when *source* is an ONNX file, bytes or ``onnx.ModelProto``."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | Path) and str(source).lower().endswith(".onnx"):
        path = Path(source)
        if not path.is_file():
            raise ModelError(f"the ONNX model file {str(path)!r} does not exist")
        return path.read_bytes()
    if type(source).__module__.startswith("onnx.") and hasattr(source, "SerializeToString"):
        return bytes(source.SerializeToString())
    return None


def numeric_batch(model: Model, batch: Any) -> np.ndarray:
    """The batch as the float32 matrix a single-tensor model takes, checked against its signature."""
    from pytest_mlops.models.base import numeric_matrix

    array = numeric_matrix(batch, "float32", describe(model))
    check_width(model, array.shape[1] if array.ndim == 2 else None, array.ndim)
    return array


def check_width(model: Model, width: int | None, ndim: int) -> None:
    """A DataError when the sample's features do not match the model's single input."""
    signature = model.signature
    if signature is None or len(signature.inputs) != 1:
        return
    spec = signature.inputs[0]
    expected = spec.shape[1] if len(spec.shape) > 1 else None
    if not isinstance(expected, int):  # width unknown (e.g. a convolutional network): no check
        return
    if ndim != 2 and len(spec.shape) == 2:
        raise DataError(
            f"{describe(model)} input {spec.name!r} takes a 2-D batch {list(spec.shape)}, "
            f"the sample has {ndim} dimensions"
        )
    if width is not None and width != expected:
        raise DataError(
            f"{describe(model)} input {spec.name!r} takes {expected} features per row "
            f"({spec.dtype}{list(spec.shape)}), the sample has {width}"
        )


# --- ONNX Runtime --------------------------------------------------------------------------


def _onnx_engine(
    data: bytes | None, model: Model | None, kind: str, index: int | None, threads: int | None
) -> Engine:
    import onnxruntime as ort

    from pytest_mlops.models.onnx import OnnxModel

    want = "CUDAExecutionProvider" if kind == "cuda" else "CPUExecutionProvider"
    if kind == "cuda" and want not in ort.get_available_providers():
        raise CheckError(
            f"device='cuda' asked for, but this onnxruntime {ort.__version__} has no "
            f"CUDAExecutionProvider (available: {ort.get_available_providers()}); install "
            "onnxruntime-gpu (pip install 'pytest-mlops[onnxruntime-gpu]') or use device='cpu'"
        )
    adapter = model if isinstance(model, OnnxModel) else None
    session = adapter.session if adapter is not None else None
    providers = list(session.get_providers()) if session is not None else []
    fits = session is not None and threads is None and providers[:1] == [want]
    if not fits:
        if data is None and adapter is not None and adapter.path is not None:
            data = adapter.path.read_bytes()
        if data is None:
            raise CheckError(
                f"{describe(adapter) if adapter else 'the ONNX model'} runs on {providers} "
                f"and cannot be rebuilt for device={kind!r}"
                + (f" with threads={threads}" if threads else "")
                + ": pass the .onnx path, the bytes or the onnx.ModelProto instead of a session"
            )
        session = _ort_session(ort, data, want, index, threads)
        name = adapter.name if adapter is not None else None
        output: Any = adapter.output if adapter is not None else "auto"
        adapter = OnnxModel(session, output=output, name=name)
    assert session is not None  # noqa: S101 - a type the caller guarantees
    assert adapter is not None  # noqa: S101 - a type the caller guarantees
    actual = tuple(session.get_providers())
    if kind == "cuda" and "CUDAExecutionProvider" not in actual:
        raise CheckError(
            f"device='cuda' asked for, but the ONNX Runtime session runs on {list(actual)}: "
            "the CUDA execution provider failed to load (check the CUDA and cuDNN libraries "
            "onnxruntime-gpu needs); refusing to report CPU timings as GPU timings"
        )
    intra = session.get_session_options().intra_op_num_threads
    gpu_name = _gpu_name(index) if kind == "cuda" else None
    engine = Engine(
        model=adapter,
        backend="onnxruntime",
        device=f"cuda:{index}" if kind == "cuda" else "cpu",
        prepare=lambda batch: _onnx_prepare(adapter, session, batch, kind, index),
        providers=actual,
        threads=threads if threads is not None else (intra or None),
        gpu_name=gpu_name,
        versions=package_versions("onnxruntime", "onnxruntime-gpu", "onnx", "numpy"),
    )
    return engine


def _ort_session(
    ort: Any, data: bytes, provider: str, index: int | None, threads: int | None
) -> Any:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers: list[Any] = ["CPUExecutionProvider"]
    if provider == "CUDAExecutionProvider":
        providers = [("CUDAExecutionProvider", {"device_id": index or 0}), "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot load the model: {str(exc).strip()[:500]}") from None


def _onnx_prepare(model: Any, session: Any, batch: Any, kind: str, index: int | None) -> Timed:
    feeds = model.feeds(batch)
    _check_onnx_feeds(model, feeds)
    if kind == "cpu":
        run = session.run

        def infer() -> Any:
            return run(None, feeds)

        return HostTimed(infer)
    # CUDA: inputs copied to the device once; outputs stay there (no per-call host copies)
    timed = HostTimed(bound_run(session, feeds, "cuda", index or 0))
    timed.timer = "perf_counter_ns (synchronous IOBinding run)"
    return timed


def bound_run(session: Any, feeds: dict[str, Any], device_type: str, index: int) -> _BoundRun:
    """A run with inputs and outputs bound on *device_type* (ONNX Runtime IOBinding)."""
    import onnxruntime as ort

    binding = session.io_binding()
    on_device = {
        name: ort.OrtValue.ortvalue_from_numpy(array, device_type, index)
        for name, array in feeds.items()
    }
    for name, value in on_device.items():
        binding.bind_ortvalue_input(name, value)
    for output in session.get_outputs():
        binding.bind_output(output.name, device_type, index)
    binding.synchronize_inputs()
    return _BoundRun(session, binding, on_device)


class _BoundRun:
    """``session.run_with_iobinding(binding)``, holding the device input buffers alive."""

    def __init__(self, session: Any, binding: Any, inputs: dict[str, Any]) -> None:
        self._run = session.run_with_iobinding
        self._binding = binding
        self._inputs = inputs

    def __call__(self) -> Any:
        return self._run(self._binding)

    def outputs(self) -> list[Any]:
        """The bound outputs copied to the host (for checking, never while timing)."""
        return list(self._binding.copy_outputs_to_cpu())


def _check_onnx_feeds(model: Any, feeds: dict[str, Any]) -> None:
    """Rank and fixed dimensions of each feed against the ONNX signature."""
    for spec in model.signature.inputs:
        array = feeds.get(spec.name)
        if array is None:
            continue
        if len(spec.shape) != array.ndim:
            raise DataError(
                f"{describe(model)} input {spec.name!r} takes {len(spec.shape)}-D tensors "
                f"{spec.dtype}{list(spec.shape)}, the sample gives shape {list(array.shape)}"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, array.shape, strict=True)):
            if axis > 0 and isinstance(want, int) and want != got:
                raise DataError(
                    f"{describe(model)} input {spec.name!r} takes {spec.dtype}{list(spec.shape)}, "
                    f"the sample gives shape {list(array.shape)}"
                )


# --- PyTorch -------------------------------------------------------------------------------


def _torch_engine(
    model: Model, kind: str, index: int | None, threads: int | None, cuda_graphs: bool
) -> Engine:
    import torch

    module = getattr(model, "module")  # noqa: B009 - TorchModel keeps the nn.Module there
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise CheckError(
                f"device='cuda' asked for, but torch.cuda.is_available() is False (torch "
                f"{torch.__version__}, built for CUDA {torch.version.cuda or 'none: a CPU-only build'}); "
                "run on a machine with a GPU or use device='cpu'"
            )
        if (index or 0) >= torch.cuda.device_count():
            raise CheckError(
                f"device='cuda:{index}' asked for, but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    target = torch.device(f"cuda:{index or 0}" if kind == "cuda" else "cpu")
    engine = Engine(
        model=model,
        backend="torch",
        device=str(target),
        prepare=lambda batch: _torch_prepare(model, module, batch, target, cuda_graphs),
        threads=threads,
        gpu_name=torch.cuda.get_device_name(target) if kind == "cuda" else None,
        versions={
            "torch": torch.__version__,
            **({"cuda": str(torch.version.cuda)} if kind == "cuda" else {}),
        },
    )
    stack = engine.cleanup
    first = next(iter(module.parameters()), None)
    home = first.device if first is not None else torch.device("cpu")
    was_training = bool(module.training)
    stack.callback(lambda: module.train(was_training))
    stack.callback(lambda: module.to(home))
    module.to(target)
    module.eval()
    if kind == "cuda":
        moved = next(iter(module.parameters()), None)
        if moved is not None and moved.device.type != "cuda":
            raise CheckError(
                f"{describe(model)} stayed on {moved.device} after .to({target}); "
                "refusing to report CPU timings as GPU timings"
            )
    if threads is not None:
        previous = torch.get_num_threads()
        stack.callback(lambda: torch.set_num_threads(previous))
        torch.set_num_threads(threads)
    engine.threads = torch.get_num_threads() if kind == "cpu" else threads
    stack.enter_context(torch.no_grad())
    return engine


def _torch_prepare(model: Model, module: Any, batch: Any, target: Any, graphs: bool) -> Timed:
    import torch

    x = torch.from_numpy(numeric_batch(model, batch)).to(target)
    if target.type == "cpu":
        return HostTimed(lambda: module(x))
    fn: Callable[[], Any] = lambda: module(x)  # noqa: E731
    if graphs:
        fn = _cuda_graph(module, x)
    return CudaEventTimed(fn, target)


def _cuda_graph(module: Any, x: Any) -> Callable[[], Any]:
    """Capture ``module(x)`` into a CUDA graph (warm up on a side stream first, as torch asks)."""
    import torch

    side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            module(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(x)
    replay: Callable[[], Any] = graph.replay
    return replay


# --- host models (scikit-learn, callables) -------------------------------------------------


def _host_engine(model: Model, kind: str, threads: int | None) -> Engine:
    if kind != "cpu":
        raise CheckError(
            f"{describe(model)} runs on the host: device='cuda' is for PyTorch and ONNX models; "
            "use device='cpu' (or export the model to ONNX and install onnxruntime-gpu)"
        )
    engine = Engine(
        model=model,
        backend=model.kind,
        device="cpu",
        prepare=lambda batch: _host_prepare(model, batch),
        threads=threads,
        versions=package_versions("scikit-learn", "numpy", "threadpoolctl"),
    )
    if threads is not None:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        engine.cleanup.enter_context(threadpool_limits(limits=threads))
    return engine


def _host_prepare(model: Model, batch: Any) -> Timed:
    signature = model.signature
    if hasattr(batch, "shape") and signature is not None and signature.inputs[0].name == "X":
        shape = batch.shape
        check_width(model, int(shape[1]) if len(shape) == 2 else None, len(shape))
    predict = model.predict
    return HostTimed(lambda: predict(batch))


def _gpu_name(index: int | None) -> str | None:
    from pytest_mlops._gpu import cuda_available

    available, name = cuda_available()
    return name if available else None
