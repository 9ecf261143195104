"""The pytest plugin: options, markers, fixtures, declarative gate items, recording and summary.

With the deploy plugin (``deploy/pytest_plugin.py`` and its ``hookspecs``), it is the only code
that knows pytest. It binds configuration to the library's checks and
records their :class:`~pytest_mlops.results.CheckResult` in ``item.user_properties``, so results
travel through pytest-xdist and land in JUnit XML. Importing it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_mlops.config import (
    GateSpec,
    ProjectConfig,
    find_config_file,
    layered,
    load_config,
    parse_cli_sets,
)
from pytest_mlops.errors import ConfigError, MlopsError, choices_text, did_you_mean
from pytest_mlops.gates import GATE_KINDS, GateKind
from pytest_mlops.project import GateContext
from pytest_mlops.results import CheckResult
from pytest_mlops.session import SessionState, TestTrack, session_report

if TYPE_CHECKING:
    from pytest_mlops.data.dataset import Dataset
    from pytest_mlops.models.base import Model

T = TypeVar("T")

RESULT_PROPERTY = "mlops.result"
#: set at collection on every mlops test: ``gate:<name>`` for a declared gate, else ``test``
TEST_PROPERTY = "mlops.test"
#: set when a check raised instead of giving a verdict: the test errored
ERROR_PROPERTY = "mlops.error"
FIXTURES = frozenset({"mlops", "mlops_model", "mlops_reference", "mlops_current"})

MARKERS = {
    "mlops": "mlops: a model gate (declared gates carry it; select them all with -m mlops).",
    "data": "data(**settings): data-validation test; settings override the config for `mlops.<kind>()`.",
    "accuracy": "accuracy(metric=..., min=..., max=...): model-quality test; settings for `mlops.accuracy()`.",
    "fairness": "fairness(sensitive=..., metric=..., min=..., max=...): bias test; settings for `mlops.fairness()`.",
    "drift": "drift(**settings): data/prediction drift test; settings for `mlops.drift()`.",
    "latency": "latency(device=..., batch_size=..., p99_ms=...): latency test; settings for `mlops.latency()`.",
    "gpu": "gpu: needs a CUDA device; skipped without one (failed with --mlops-require-gpu).",
}


STATE = pytest.StashKey[SessionState]()


# --- options -------------------------------------------------------------------------------

_OPTIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    (
        "--mlops-config",
        "mlops_config",
        "config file (default: mlops.toml, else pyproject.toml [tool.pytest_mlops])",
        {},
    ),
    ("--mlops-model", "mlops_model", "model: an .onnx path or 'package.module:factory'", {}),
    ("--mlops-reference", "mlops_reference", "reference dataset (CSV or Parquet)", {}),
    ("--mlops-current", "mlops_current", "current dataset (CSV or Parquet)", {}),
    (
        "--mlops-report",
        "mlops_report",
        "write the JSON report of all mlops results to this path",
        {},
    ),
    (
        "--mlops-inconclusive",
        "mlops_inconclusive",
        "what an inconclusive verdict does: fail (default), skip or pass",
        {"choices": ("fail", "skip", "pass")},
    ),
    ("--mlops-seed", "mlops_seed", "seed of every resampling (default 0)", {"type": int}),
    (
        "--mlops-deploy",
        "mlops_deploy",
        "after a session in which every mlops gate passed, package the model and deploy it to "
        "this stage (staging); see docs/deploy.md",
        {},
    ),
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the deploy hook specifications."""
    from pytest_mlops.deploy import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's command-line options and ini settings."""
    group = parser.getgroup("mlops", "model gates (pytest-mlops)")
    for flag, ini, help_text, extra in _OPTIONS:
        group.addoption(
            flag,
            dest=ini,
            default=None,
            metavar=ini.split("_", 1)[1].upper(),
            help=help_text,
            **extra,
        )
        parser.addini(ini, help_text, default=None)
    group.addoption(
        "--mlops-require-gpu",
        dest="mlops_require_gpu",
        action="store_true",
        default=None,
        help="fail GPU tests when no CUDA device is present",
    )
    parser.addini(
        "mlops_require_gpu",
        "fail GPU tests when no CUDA device is present",
        type="bool",
        default=None,
    )
    group.addoption(
        "--mlops-set",
        dest="mlops_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting: seed=3, target=income, gates.accuracy.min=0.9",
    )


def _option(config: pytest.Config, name: str) -> Any:
    """An option's value: the command line first, then its ini twin."""
    value = config.getoption(name, default=None)
    if value is None or value == []:
        value = config.getini(name) if name != "mlops_set" else None
    return value if value not in ("", []) else None


def _cli_settings(config: pytest.Config) -> dict[str, Any]:
    here = Path(config.invocation_params.dir)
    values: dict[str, Any] = parse_cli_sets(config.getoption("mlops_set") or [])
    for key in ("model", "reference", "current", "report", "inconclusive", "seed", "require_gpu"):
        value = _option(config, f"mlops_{key}")
        if key == "seed" and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"mlops_seed must be a whole number, got {value!r}") from None
        if isinstance(value, str) and key in ("reference", "current", "report"):
            value = str(here / value)
        if key == "model" and isinstance(value, str) and value.lower().endswith(".onnx"):
            value = str(here / value)
        if value is not None:
            values[key] = value
    return values


# --- configure -----------------------------------------------------------------------------


def _drop_earlier_report(config: pytest.Config) -> str:
    """Remove the report ``--mlops-report`` names, if an earlier run of ours wrote it.

    A run that stops on a usage error writes no report; the one at that path is then not the
    evidence of this run and must not be packaged as if it were. Only a file in our report
    format is removed. Returns what to add to the error message.
    """
    value = _option(config, "mlops_report")
    if not isinstance(value, str):
        return ""
    path = Path(config.invocation_params.dir) / value
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        if b'"format": "pytest-mlops-report"' not in head:
            return ""
        path.unlink()
    except OSError:
        return ""
    return f" (the earlier report {value!r} was removed: it is not the evidence of this run)"


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, load the project's configuration and set up the session."""
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    try:
        path = find_config_file(config.rootpath, _option(config, "mlops_config"))
        project = load_config(path, _cli_settings(config))
    except MlopsError as exc:
        dropped = _drop_earlier_report(config)
        raise pytest.UsageError(f"pytest-mlops: {exc}{dropped}") from None
    state = SessionState(project=project, context=GateContext(project))
    config.stash[STATE] = state
    config.pluginmanager.register(Recorder(state), "mlops-recorder")
    stage = _option(config, "mlops_deploy")
    if stage:
        from pytest_mlops.deploy.pytest_plugin import DeployPlugin

        config.pluginmanager.register(DeployPlugin(state, stage), "mlops-deploy")


def _state(config: pytest.Config) -> SessionState:
    return config.stash[STATE]


# --- declarative gates -----------------------------------------------------------------------


def failure_text(result: CheckResult, reason: str = "") -> str:
    """How a result that did not pass reads in the test report."""
    lines = [f"{result.kind} gate {result.name!r} {result.status.upper()}: {result.message}"]
    if reason:
        lines.append(reason)
    if result.details:
        lines.append(result.details)
    return "\n".join(lines)


def _render_error(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    if isinstance(excinfo.value, MlopsError):
        return f"pytest-mlops: {excinfo.value}"
    return None


class GateFile(pytest.File):
    """The config file, collected as the container of one item per declared gate."""

    def collect(self) -> Iterator[GateItem]:
        for spec in _state(self.config).project.gates:
            yield GateItem.from_parent(self, name=spec.name, spec=spec)


class GateItem(pytest.Item):
    """One declared gate, run as a test."""

    def __init__(self, *, spec: GateSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.kind: GateKind = GATE_KINDS[spec.kind]
        self.add_marker("mlops")
        self.add_marker(self.kind.marker)
        if spec.params.get("device") == "cuda":
            self.add_marker("gpu")

    def runtest(self) -> None:
        state = _state(self.config)
        try:
            result = self.kind.execute(state.context, self.spec.name, self.spec.params)
        except Exception as exc:  # the gate could not be evaluated: an error, not a verdict
            text = f"pytest-mlops: {exc}" if isinstance(exc, MlopsError) else repr(exc)
            self.user_properties.append((ERROR_PROPERTY, text))
            raise
        record_result(self, result)
        enforce(result, state.project.settings.inconclusive)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        return _render_error(excinfo) or super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"mlops gate {self.spec.name} [{self.spec.kind}]"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> GateFile | None:
    """Collect the project's configuration file as a file of gates when it declares some."""
    state = parent.config.stash.get(STATE, None)
    if state is None or not state.project.gates or state.project.path is None:
        return None
    if file_path.resolve() != state.project.path.resolve():
        return None
    return GateFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the declared gates when pytest ran on default paths (testpaths) that skip them.

    Also mark every mlops test so that its outcome reaches the report (through xdist too).
    """
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if (
        state.project.gates
        and state.project.path is not None
        and config.args_source != pytest.Config.ArgsSource.ARGS
        and not any(isinstance(item, GateItem) for item in items)
    ):
        items.extend(GateFile.from_parent(session, path=state.project.path).collect())
    for item in items:
        if isinstance(item, GateItem):
            item.user_properties.append((TEST_PROPERTY, f"gate:{item.spec.name}"))
        elif _is_mlops_test(item):
            item.user_properties.append((TEST_PROPERTY, "test"))


def _is_mlops_test(item: pytest.Item) -> bool:
    """A test with one of our markers or fixtures (its outcome is part of the evidence)."""
    if any(item.get_closest_marker(name) is not None for name in MARKERS):
        return True
    return bool(FIXTURES.intersection(getattr(item, "fixturenames", ())))


# --- recording -----------------------------------------------------------------------------


def record_result(item: pytest.Item, result: CheckResult) -> None:
    """Attach *result* to the test: full JSON plus scalar properties for JUnit readers."""
    item.user_properties.append((RESULT_PROPERTY, result.to_json()))
    prefix = f"mlops.{result.name}"
    item.user_properties.append((f"{prefix}.status", result.status))
    if result.value is not None and result.metric:
        item.user_properties.append((f"{prefix}.{result.metric}", result.value))
    if result.bound_text:
        item.user_properties.append((f"{prefix}.bound", result.bound_text))


def enforce(result: CheckResult, inconclusive: str) -> None:
    """Turn a result into the test outcome: failed fails; inconclusive follows the setting."""
    if result.failed:
        pytest.fail(failure_text(result), pytrace=False)
    if result.inconclusive:
        if inconclusive == "skip":
            pytest.skip(f"inconclusive: {result.message}")
        if inconclusive == "fail":
            reason = "(inconclusive verdicts fail; set inconclusive = 'skip' or 'pass' to change)"
            pytest.fail(failure_text(result, reason), pytrace=False)


class Recorder:
    """Collects results and outcomes from reports.

    On the xdist controller they arrive from workers, so everything it needs travels in
    ``report.user_properties``.
    """

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        marks = [str(v) for k, v in report.user_properties if k == TEST_PROPERTY]
        results = [str(v) for k, v in report.user_properties if k == RESULT_PROPERTY]
        if not marks and not results:
            return
        track = self.state.tests.setdefault(report.nodeid, TestTrack(_gate_of(marks)))
        track.phases[report.when] = report.outcome
        if report.when == "call":
            self._results(report, results, track)
        if report.when == "call" or not report.passed:
            errors = [str(v) for k, v in report.user_properties if k == ERROR_PROPERTY]
            track.error = track.error or (errors[-1] if errors else "")
            track.message = track.message or _first_line(report)

    def _results(self, report: pytest.TestReport, results: list[str], track: TestTrack) -> None:
        from pytest_mlops.report.json import ReportEntry

        for value in results:
            result = CheckResult.from_json(value)
            track.statuses.append(result.status)
            self.state.entries.append(
                ReportEntry(nodeid=report.nodeid, outcome=report.outcome, result=result)
            )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.state.collection_errors.append(
                {"nodeid": report.nodeid, "message": _first_line(report)}
            )


def _gate_of(marks: list[str]) -> str | None:
    gates = [m.split(":", 1)[1] for m in marks if m.startswith("gate:")]
    return gates[0] if gates else None


def _first_line(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The gist of a report that did not pass: the skip reason or the error's last line."""
    if report.passed:
        return ""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")[:500]
    lines = [line.strip() for line in report.longreprtext.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return (errors[-1] if errors else lines[-1] if lines else "")[:500]


def require_cuda(config: pytest.Config) -> None:
    """Skip the running test where no CUDA device exists, or fail it with --mlops-require-gpu."""
    from pytest_mlops._gpu import cuda_available

    available, reason = cuda_available()
    if available:
        return
    if _state(config).project.settings.require_gpu:
        pytest.fail(f"GPU required (--mlops-require-gpu) but {reason}", pytrace=False)
    pytest.skip(f"no CUDA device: {reason}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a GPU test without a GPU, before its fixtures load (unless one is required)."""
    # Skip before fixtures load; a required GPU fails in the call phase (a failure, not an error).
    if (
        item.get_closest_marker("gpu") is not None
        and not _state(item.config).project.settings.require_gpu
    ):
        require_cuda(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Check for the GPU a GPU test needs in the call phase (skip, or fail when required)."""
    if item.get_closest_marker("gpu") is not None:
        require_cuda(item.config)


# --- summary and report --------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Write the mlops results table, verdict and report status to the terminal."""
    state = config.stash.get(STATE, None)
    if state is None or not (state.entries or state.tests) or hasattr(config, "workerinput"):
        return
    from pytest_mlops.report.text import render_table

    terminalreporter.section("mlops")
    for line in render_table(state.entries):
        terminalreporter.write_line(line)
    report = session_report(state, int(exitstatus), inputs=False)
    summary = report["summary"]
    terminalreporter.write_line(f"mlops verdict: {summary['verdict'].upper()}")
    for reason in summary["reasons"]:
        terminalreporter.write_line(f"  {reason}")
    path = state.project.settings.report
    if path and state.report_error:
        terminalreporter.write_line(f"mlops report NOT written: {state.report_error}", red=True)
    elif path:
        terminalreporter.write_line(f"mlops report written to {path}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the mlops report, if configured; a failure to write it fails the session."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or hasattr(config, "workerinput") or not state.project.settings.report:
        return
    from pytest_mlops.report.json import write_report

    try:
        write_report(Path(state.project.settings.report), session_report(state, int(exitstatus)))
    except MlopsError as exc:
        state.report_error = str(exc)
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlops_project(pytestconfig: pytest.Config) -> ProjectConfig:
    """The resolved pytest-mlops configuration (settings and declared gates)."""
    return _state(pytestconfig).project


@pytest.fixture(scope="session")
def mlops_model(pytestconfig: pytest.Config) -> Model:
    """The configured model, loaded once per session."""
    return _fixture_value(lambda: _state(pytestconfig).context.model)


@pytest.fixture(scope="session")
def mlops_reference(pytestconfig: pytest.Config) -> Dataset:
    """The configured reference dataset."""
    return _fixture_value(lambda: _state(pytestconfig).context.dataset("reference"))


@pytest.fixture(scope="session")
def mlops_current(pytestconfig: pytest.Config) -> Dataset:
    """The configured current dataset."""
    return _fixture_value(lambda: _state(pytestconfig).context.dataset("current"))


def _fixture_value(load: Callable[[], T]) -> T:
    try:
        return load()
    except MlopsError as exc:
        pytest.fail(f"pytest-mlops: {exc}", pytrace=False)


@pytest.fixture
def mlops(request: pytest.FixtureRequest) -> Checker:
    """Run gates from a test and record their results.

    ``mlops.accuracy(min=0.85)`` runs the ``accuracy`` gate kind with settings layered as marker
    kwargs > ``--mlops-set`` > the declared gate of that name > defaults; ``mlops.check(result)``
    records any :class:`CheckResult` from the library and fails the test if it did not pass.
    """
    return Checker(request.node, _state(request.config))


class Checker:
    """The object behind the ``mlops`` fixture."""

    def __init__(self, item: pytest.Item, state: SessionState) -> None:
        self._item = item
        self._state = state

    @property
    def model(self) -> Model:
        return self._state.context.model

    @property
    def reference(self) -> Dataset:
        return self._state.context.dataset("reference")

    @property
    def current(self) -> Dataset:
        return self._state.context.dataset("current")

    @property
    def context(self) -> GateContext:
        return self._state.context

    def check(self, result: CheckResult) -> CheckResult:
        """Record *result* on this test and fail the test unless it passed."""
        record_result(self._item, result)
        enforce(result, self._state.project.settings.inconclusive)
        return result

    def run(self, kind: str, /, *, gate: str | None = None, **params: Any) -> CheckResult:
        """Run a gate of *kind*; *gate* names a declared gate whose settings to start from."""
        try:
            result = self._run(kind, gate, params)
        except MlopsError as exc:
            self._item.user_properties.append((ERROR_PROPERTY, f"pytest-mlops: {exc}"))
            pytest.fail(f"pytest-mlops: {exc}", pytrace=False)
        return self.check(result)

    def _run(self, kind: str, gate: str | None, params: Mapping[str, Any]) -> CheckResult:
        gate_kind = GATE_KINDS.kind(kind)
        declared = self._state.project.gate(gate or kind)
        if gate is not None and declared is None:
            raise ConfigError(f"no gate named {gate!r} is declared in {self._state.project.source}")
        base: Mapping[str, Any] = declared.params if declared and declared.kind == kind else {}
        marker = self._item.get_closest_marker(gate_kind.marker)
        marker_kwargs = _marker_settings(marker.kwargs if marker else {}, gate_kind)
        where = f"test {self._item.nodeid!r} gate {kind!r}"
        settings = gate_kind.validate(layered(base, marker_kwargs, params), where)
        if settings.get("device") == "cuda":
            require_cuda(self._item.config)
        return gate_kind.execute(self._state.context, gate or kind, settings)

    def __getattr__(self, kind: str) -> Callable[..., CheckResult]:
        __tracebackhide__ = True  # the user's line and the message, not our frames
        if kind.startswith("_") or kind not in GATE_KINDS:
            raise AttributeError(
                f"'mlops' has no check {kind!r}{did_you_mean(kind, GATE_KINDS)}; "
                f"valid checks are {choices_text(GATE_KINDS)}"
            )
        return lambda **params: self.run(kind, **params)


def _marker_settings(kwargs: Mapping[str, Any], kind: GateKind) -> dict[str, Any]:
    """Marker kwargs that belong to *kind* (a family marker is shared by several kinds)."""
    own = {p.name for p in kind.params}
    shared = {p.name for k in GATE_KINDS.values() if k.marker == kind.marker for p in k.params}
    unknown = [key for key in kwargs if key not in shared]
    if unknown:
        raise ConfigError(
            f"@pytest.mark.{kind.marker}: unknown setting {unknown[0]!r}"
            f"{did_you_mean(unknown[0], shared)}; valid settings are {choices_text(shared)}"
        )
    return {k: v for k, v in kwargs.items() if k in own}


def pytest_report_header(config: pytest.Config) -> str | None:
    """The mlops header line: the configuration file and its number of gates."""
    state = config.stash.get(STATE, None)
    if state is None or state.project.path is None:
        return None
    gates = len(state.project.gates)
    return f"mlops: {state.project.source}, {gates} gate{'s' if gates != 1 else ''}"


# --- a CI stage: pytest in this process, watched -------------------------------------------


class StageWatcher:
    """Sees the project pytest loaded and which of its declared gates ran (for a CI stage).

    Parameters
    ----------
    stage:
        The stage's name, for the message when no configuration is found.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.project: ProjectConfig | None = None
        self.configured = False
        self.ran: set[str] = set()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # after every plugin's pytest_configure: the mlops plugin has loaded the project
        config = session.config
        self.configured = True
        state = config.stash.get(STATE, None)
        project = state.project if state is not None else None
        if project is None or project.path is None:
            raise pytest.UsageError(
                f"pytest-mlops stage {self.stage}: no pytest-mlops configuration in "
                f"{config.rootpath} (mlops.toml, or pyproject.toml with [tool.pytest_mlops]); "
                "run the stage in the project directory (MLOPS_DIR on GitLab, "
                "working-directory on GitHub)"
            )
        self.project = project

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.project is None or self.project.path is None:
            return
        if report.when == "call" or (report.when == "setup" and report.failed):
            where, _, name = report.nodeid.rpartition("::")
            if where.rsplit("/", 1)[-1] == self.project.path.name:
                self.ran.add(name)


def run_watched(stage: str, args: Sequence[str]) -> tuple[int, StageWatcher]:
    """Run pytest with *args* in this process, watched; its exit status and what was seen.

    Parameters
    ----------
    stage:
        The CI stage being run (named in the message when no configuration is found).
    args:
        pytest's command-line arguments.
    """
    watcher = StageWatcher(stage)
    return int(pytest.main(list(args), plugins=[watcher])), watcher
