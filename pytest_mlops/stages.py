"""``pytest-mlops stage``: one gate stage of a CI pipeline, and whether it really passed.

A stage runs the tests of one family (``pytest -m data``, ``-m accuracy``...). pytest alone cannot
tell a family the project does not use from a stage that ran in the wrong directory, or whose
gates were deselected: both collect nothing and exit with status 5, or pass with fewer tests. So
the CI templates run ``pytest-mlops stage NAME``, which runs pytest in this process and decides:

- no configuration (``mlops.toml``, or ``pyproject.toml`` with ``[tool.pytest_mlops]``) was found:
  exit 2, before any test runs (a wrong ``MLOPS_DIR`` or working directory);
- the project declares gates of the stage's family and one of them did not run (nothing
  collected, or deselected by ``-k``/``-m`` in the extra arguments): exit 1, naming them;
- pytest collected nothing and the project declares no gate of the family: exit 0. This is the
  one empty stage that passes: a family the project does not use;
- otherwise pytest's own verdict: 0 passed, 1 a test failed; 2, 3 and 4 (interrupted, internal
  error, usage error) exit 2.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_mlops.errors import ConfigError, choices_text, did_you_mean

if TYPE_CHECKING:
    from pytest_mlops.config import GateSpec, ProjectConfig

__all__ = ["STAGES", "Stage", "StageVerdict", "decide", "run_stage", "stage_gates"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class Stage:
    """A gate stage: the family its tests belong to and how pytest selects them.

    Parameters
    ----------
    name:
        The stage's name (the CI job's).
    family:
        The marker of its gate kinds (``data``, ``accuracy``...).
    marker:
        The ``-m`` expression selecting its tests.
    gpu:
        For latency: ``True`` for the GPU stage (gates with ``device = "cuda"``), ``False`` for
        the CPU one; ``None`` where the device does not matter.
    pytest_args:
        Arguments the stage always passes (the GPU stage fails without a CUDA device).
    """

    name: str
    family: str
    marker: str
    gpu: bool | None = None
    pytest_args: tuple[str, ...] = ()

    def owns(self, gate: GateSpec) -> bool:
        """Whether the declared *gate* runs in this stage."""
        from pytest_mlops.gates import GATE_KINDS

        kind = GATE_KINDS.get(gate.kind)
        if kind is None or kind.marker != self.family:
            return False
        return self.gpu is None or (gate.params.get("device") == "cuda") == self.gpu


STAGES: Mapping[str, Stage] = {
    s.name: s
    for s in (
        Stage("data", "data", "data"),
        Stage("quality", "accuracy", "accuracy"),
        Stage("fairness", "fairness", "fairness"),
        Stage("drift", "drift", "drift"),
        Stage("latency-cpu", "latency", "latency and not gpu", gpu=False),
        Stage(
            "latency-gpu",
            "latency",
            "latency and gpu",
            gpu=True,
            pytest_args=("--mlops-require-gpu",),
        ),
    )
}


@dataclass(frozen=True)
class StageVerdict:
    """What a stage concluded: ``status``, the exit code and a line that says why."""

    stage: str
    status: Literal["passed", "failed", "error"]
    exit_code: int
    message: str

    def line(self) -> str:
        return f"stage {self.stage}: {self.status.upper()} - {self.message}"


def stage_gates(stage: Stage, project: ProjectConfig) -> tuple[str, ...]:
    """The names of the declared gates that run in *stage*, in declaration order."""
    return tuple(gate.name for gate in project.gates if stage.owns(gate))


def decide(
    stage: Stage, declared: Sequence[str], ran: Collection[str], exitstatus: int
) -> StageVerdict:
    """The stage's verdict from pytest's exit status and which declared gates ran.

    Parameters
    ----------
    stage:
        The stage.
    declared:
        The names of the declared gates of the stage (:func:`stage_gates`).
    ran:
        The names of the declared gates that ran (passed, failed or errored; not skipped before
        running, not deselected).
    exitstatus:
        pytest's exit status.
    """
    missing = [name for name in declared if name not in ran]
    family = f"{stage.family} gate{'s' if len(declared) != 1 else ''}"
    if exitstatus not in (0, 1, PYTEST_NO_TESTS):
        return StageVerdict(
            stage.name, "error", EXIT_USAGE, f"pytest stopped with exit status {exitstatus}"
        )
    if missing:
        why = "pytest collected no test" if exitstatus == PYTEST_NO_TESTS else "deselected?"
        return StageVerdict(
            stage.name,
            "failed",
            EXIT_FAILED,
            f"{len(missing)} of {len(declared)} declared {family} did not run: "
            f"{', '.join(missing)} ({why})",
        )
    if exitstatus == 1:
        return StageVerdict(stage.name, "failed", EXIT_FAILED, "a gate or test failed")
    return StageVerdict(stage.name, "passed", EXIT_OK, _passed(stage, declared, exitstatus))


def _passed(stage: Stage, declared: Sequence[str], exitstatus: int) -> str:
    if exitstatus == PYTEST_NO_TESTS:
        return (
            f"the project declares no {stage.family} gate and has no test marked "
            f"{stage.marker!r}: nothing to check"
        )
    if not declared:
        return f"no {stage.family} gate is declared; the tests marked {stage.marker!r} passed"
    family = f"{stage.family} gate{'s' if len(declared) != 1 else ''}"
    return f"{len(declared)} declared {family} passed: {', '.join(declared)}"


def run_stage(
    name: str,
    *,
    report: str | None = None,
    junitxml: str | None = None,
    pytest_args: Sequence[str] = (),
) -> StageVerdict:
    """Run the stage *name* with pytest in this process (in the current directory); its verdict.

    Raises
    ------
    ConfigError
        For an unknown stage name (the message lists the valid ones).
    """
    from pytest_mlops.plugin import run_watched  # pytest: imported when a stage runs

    if name not in STAGES:
        raise ConfigError(
            f"unknown stage {name!r}{did_you_mean(name, STAGES)}; choose {choices_text(STAGES)}"
        )
    stage = STAGES[name]
    args = ["-m", stage.marker, *stage.pytest_args]
    if report:
        args.append(f"--mlops-report={report}")
    if junitxml:
        args.append(f"--junitxml={junitxml}")
    exitstatus, watcher = run_watched(stage.name, [*args, *pytest_args])
    if watcher.project is None:
        why = "no pytest-mlops configuration" if watcher.configured else "pytest did not start"
        return StageVerdict(
            stage.name, "error", EXIT_USAGE, f"{why} (exit status {exitstatus}; see above)"
        )
    return decide(stage, stage_gates(stage, watcher.project), watcher.ran, exitstatus)


def add_stage(sub: Any) -> None:
    """Register ``pytest-mlops stage`` on the CLI's subparsers."""
    parser = sub.add_parser(
        "stage",
        help="run one CI gate stage (pytest -m FAMILY) and fail it when declared gates did not run",
        description="Run the tests of one gate stage with pytest and decide whether the stage "
        "passed: an empty stage passes only when the project declares no gate of its family. "
        + "; ".join(f"{s.name}: -m {s.marker!r}" for s in STAGES.values()),
    )
    parser.add_argument("stage", metavar="STAGE", help=f"one of {choices_text(STAGES)}")
    parser.add_argument("--report", metavar="PATH", help="write the stage's JSON report here")
    parser.add_argument("--junitxml", metavar="PATH", help="write JUnit XML here")
    parser.add_argument(
        "--pytest-args",
        metavar="ARGS",
        default="",
        help="more arguments for pytest, split like a shell would: --pytest-args='-x -n 2'",
    )
    parser.set_defaults(func=_cmd_stage)


def _cmd_stage(args: argparse.Namespace) -> int:
    try:
        extra = shlex.split(args.pytest_args)
    except ValueError as exc:
        raise ConfigError(f"--pytest-args {args.pytest_args!r}: {exc}") from None
    verdict = run_stage(args.stage, report=args.report, junitxml=args.junitxml, pytest_args=extra)
    print(verdict.line())
    return verdict.exit_code
