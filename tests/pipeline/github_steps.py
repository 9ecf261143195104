"""The shell steps of a GitHub workflow, extracted with their ``env`` and run in order.

Not a runner (GitHub Actions cannot run here): a check of *our* commands. Every ``run:`` step of
the workflow's jobs, and of the local composite action they use, runs with the workflow's, job's
and step's ``env``, its ``working-directory`` and ``shell: bash`` as GitHub starts it
(``bash --noprofile --norc -eo pipefail``), with the ``${{ }}`` expressions evaluated in the
contexts an event would have. Jobs run one after the other in their ``needs`` order, in one
checkout; job and step ``if:`` conditions are evaluated with GitHub's status functions.

GitHub's own actions are not run: ``actions/checkout`` (the checkout is there),
``actions/setup-python`` (the machine's Python is on PATH), artifacts (one checkout holds every
job's files) and ``actions/cache``, which answers ``cache-hit`` when its path exists, as a warm
cache would. ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_PATH`` and ``GITHUB_STEP_SUMMARY`` are
files, read back after each step as a runner does.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!(),])"
    r"|(?P<name>[A-Za-z_][\w.\-]*))"
)
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class Expressions:
    """GitHub's expression language, as much as the templates use.

    Literals, context lookups (``inputs.gpu-runner``, ``steps.render.outputs.markdown``), ``!``,
    ``==``, ``!=``, ``&&``, ``||``, parentheses, and the functions ``always``, ``success``,
    ``failure``, ``cancelled`` and ``hashFiles``. Anything else is an error, so a template that
    starts using more is noticed.
    """

    def __init__(self, contexts: Mapping[str, Any], *, failed: bool, cwd: Path) -> None:
        self.contexts, self.failed, self.cwd = contexts, failed, cwd

    def evaluate(self, text: str) -> Any:
        inner = EXPR.fullmatch(text.strip())
        self.tokens = self._tokenize(inner.group(1) if inner else text)
        value = self._or()
        if self.tokens:
            raise ValueError(f"unexpected {self.tokens[0]!r} in {text!r}")
        return value

    def substitute(self, text: str) -> str:
        return EXPR.sub(lambda m: _text(self.evaluate(m.group(1))), text)

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, at = [], 0
        while text[at:].strip():
            match = TOKEN.match(text, at)
            if match is None:
                raise ValueError(f"cannot read the expression {text!r} at {text[at:]!r}")
            kind = match.lastgroup
            assert kind is not None
            tokens.append((kind, match.group(kind)))
            at = match.end()
        return tokens

    def _take(self, op: str) -> bool:
        if self.tokens and self.tokens[0] == ("op", op):
            self.tokens.pop(0)
            return True
        return False

    def _or(self) -> Any:
        value = self._and()
        while self._take("||"):
            right = self._and()
            value = value or right
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._take("&&"):
            right = self._compare()
            value = value and right
        return value

    def _compare(self) -> Any:
        value = self._unary()
        for op in ("==", "!="):
            if self._take(op):
                right = self._unary()
                same = _loose(value) == _loose(right)
                return same if op == "==" else not same
        return value

    def _unary(self) -> Any:
        if self._take("!"):
            return not self._unary()
        if self._take("("):
            value = self._or()
            if not self._take(")"):
                raise ValueError("missing )")
            return value
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self.tokens.pop(0)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self._take("("):
            args = []
            while not self._take(")"):
                args.append(self._or())
                self._take(",")
            return self._call(text, args)
        return self._lookup(text)

    def _call(self, name: str, args: list[Any]) -> Any:
        if name == "always":
            return True
        if name == "cancelled":
            return False
        if name == "failure":
            return self.failed
        if name == "success":
            return not self.failed
        if name == "hashFiles":
            found = [p for pattern in args for p in sorted(self.cwd.glob(str(pattern)))]
            return "x" * 64 if found else ""
        raise ValueError(f"unknown function {name}()")

    def _lookup(self, dotted: str) -> Any:
        value: Any = self.contexts
        for part in dotted.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value


def _loose(value: Any) -> Any:
    return "" if value is None else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def has_status_check(condition: str) -> bool:
    return bool(re.search(r"\b(always|success|failure|cancelled)\(", condition))


@dataclass
class Job:
    """What one job did: its status and the steps it ran."""

    name: str
    needs: tuple[str, ...] = ()
    status: str = "skipped"  # success | failure | skipped
    steps: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: str = ""


@dataclass
class StepRunner:
    """Runs the steps of a workflow's jobs in one checkout (see the module docstring)."""

    repo: Path
    env: Mapping[str, str]
    github: Mapping[str, Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    summary: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".md")[1]))

    def run_workflow(self, path: str) -> dict[str, Job]:
        """Run *path*'s jobs in ``needs`` order; their results by job id."""
        workflow = yaml.safe_load((self.repo / path).read_text())
        inputs = _defaults(workflow.get(True, {}).get("workflow_call", {}).get("inputs", {}))
        inputs.update(self.inputs)
        jobs: dict[str, Job] = {}
        for job_id in _needs_order(workflow["jobs"]):
            spec = workflow["jobs"][job_id]
            jobs[job_id] = self._job(job_id, spec, workflow.get("env", {}), inputs, jobs)
        return jobs

    def _job(
        self, job_id: str, spec: Any, env: Mapping[str, str], inputs: Any, done: dict[str, Job]
    ) -> Job:
        needs = spec.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        job = Job(job_id, tuple(needs))
        ancestors_failed = any(done[n].status == "failure" for n in _ancestors(needs, done))
        needs_ok = all(done[n].status == "success" for n in needs)
        contexts = self._contexts(inputs, {}, {"env": dict(env)})
        condition = str(spec.get("if", ""))
        expressions = Expressions(contexts, failed=ancestors_failed, cwd=self.repo)
        wanted = expressions.evaluate(condition) if condition else True
        if not (has_status_check(condition) or needs_ok) or not wanted:
            return job
        job.status = "success"
        defaults = spec.get("defaults", {}).get("run", {})
        state = {"env": {**env, **spec.get("env", {})}, "path": [], "steps": {}}
        for step in spec["steps"]:
            self._step(job, step, defaults, inputs, state)
        return job

    def _step(self, job: Job, step: Any, defaults: Any, inputs: Any, state: Any) -> None:
        uses = str(step.get("uses", ""))
        contexts = self._contexts(inputs, state["steps"], {"env": state["env"]})
        failed = job.status == "failure"
        expressions = Expressions(contexts, failed=failed, cwd=self.repo)
        condition = str(step.get("if", ""))
        if condition and not has_status_check(condition) and failed:
            return
        if not condition and failed:
            return
        if condition and not expressions.evaluate(condition):
            return
        if uses.startswith("./"):
            self._action(job, step, inputs, state, expressions)
        elif uses.startswith("actions/cache") and "id" in step:
            where = self.repo / expressions.substitute(str(step["with"]["path"]))
            hit = "true" if where.exists() else "false"
            state["steps"][step["id"]] = {"outputs": {"cache-hit": hit}, "outcome": "success"}
        elif "run" in step:
            self._run(job, step, defaults, expressions, state)

    def _action(self, job: Job, step: Any, inputs: Any, state: Any, outer: Expressions) -> None:
        action = yaml.safe_load((self.repo / step["uses"] / "action.yml").read_text())
        given = {k: outer.substitute(str(v)) for k, v in (step.get("with") or {}).items()}
        own = {**_defaults(action.get("inputs", {})), **{k: v for k, v in given.items() if v}}
        inner = {"env": dict(state["env"]), "path": state["path"], "steps": {}}
        for sub in action["runs"]["steps"]:
            self._step(job, sub, {}, own, inner)
        state["path"] = inner["path"]

    def _run(self, job: Job, step: Any, defaults: Any, expr: Expressions, state: Any) -> None:
        env = {**state["env"], **(step.get("env") or {})}
        env = {k: expr.substitute(str(v)) for k, v in env.items()}
        script = expr.substitute(str(step["run"]))
        where = step.get("working-directory", defaults.get("working-directory", "."))
        cwd = (self.repo / expr.substitute(str(where))).resolve()
        with tempfile.TemporaryDirectory() as files:
            paths = {n: Path(files) / n for n in ("output", "env", "path")}
            for p in paths.values():
                p.touch()
            process_env = {
                **self.env,
                **env,
                "GITHUB_OUTPUT": str(paths["output"]),
                "GITHUB_ENV": str(paths["env"]),
                "GITHUB_PATH": str(paths["path"]),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_WORKSPACE": str(self.repo),
                "CI": "true",
            }
            process_env["PATH"] = os.pathsep.join([*state["path"], self.env["PATH"]])
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=cwd, env=process_env, capture_output=True, text=True, timeout=600,
                check=False,
            )  # fmt: skip
            name = step.get("name", script.splitlines()[0])
            job.log += f"\n$ {name}\n{done.stdout}{done.stderr}"
            job.steps.append(name)
            outputs = _key_values(paths["output"].read_text())
            state["env"].update(_key_values(paths["env"].read_text()))
            state["path"] = [*paths["path"].read_text().split(), *state["path"]]
        if "id" in step:
            outcome = "success" if done.returncode == 0 else "failure"
            state["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome}
        if done.returncode != 0:
            job.status = "failure"

    def _contexts(self, inputs: Any, steps: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "inputs": inputs,
            "github": self.github,
            "steps": steps,
            "secrets": self.secrets,
            "vars": self.vars,
            "runner": {"os": "Linux", "arch": "X64"},
            **extra,
        }


def _defaults(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: spec.get("default", "") for name, spec in inputs.items()}


def _key_values(text: str) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` blocks, as GitHub reads these files."""
    out, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for more in lines:
                if more == delimiter:
                    break
                block.append(more)
            out[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


def _needs_order(jobs: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    pending = list(jobs)
    while pending:
        for job_id in pending:
            needs = jobs[job_id].get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if all(n in order for n in needs):
                order.append(job_id)
                pending.remove(job_id)
                break
        else:
            raise ValueError(f"jobs {pending} need each other")
    return order


def _ancestors(needs: list[str], done: Mapping[str, Job]) -> set[str]:
    """The jobs *needs* name, and theirs (GitHub's failure() looks at every ancestor)."""
    out: set[str] = set()
    todo = list(needs)
    while todo:
        job = todo.pop()
        if job not in out:
            out.add(job)
            todo.extend(done[job].needs)
    return out
