"""Crash safety of the registry backends: kill promoting processes at random points.

Each trial starts a child that promotes, rolls back and (except on OCI) pushes in a loop against
one registry, and SIGKILLs it after a random delay. After every kill the registry
must hold:

* production and staging point at versions that exist and whose every byte verifies;
* the audit log agrees with the pointers (the last event of a stage names its current version,
  each event's ``previous_version`` is the version the event before it left) and its sequence
  numbers only grow;
* SQLite's integrity check passes.

With ``--backend oci`` the stages are also tags in a real OCI registry, with ``--backend mlflow``
model aliases in a real MLflow server. A kill between moving the remote pointer and committing the
audit event leaves the pointer one move ahead of the log; so after every kill the ``production``
and ``staging`` pointers must name a verified version, and once reconciled (what the next
promotion does first) the very version the log names. On OCI the children do not push (a push is
a ``docker build``); the figures say how often a pointer was ahead.

Then: concurrent promotions (several processes at once) leave a consistent chain, and a
byte-flipped artifact is refused before any pointer moves.

Run: ``.venv/bin/python benchmarks/promotion_kill.py --trials 120``; for the remote backends, with
dockerd, a registry, a base image and an MLflow server up (``bash scripts/services.sh``, then
source the env file it names): ``--backend oci`` or ``--backend mlflow``. Against a registry
behind TLS and authentication: ``--registry "$MLOPS_TEST_REGISTRY_TOKEN" --ca-bundle
"$MLOPS_TEST_CA"``, with the credentials in ``MLOPS_REGISTRY_USERNAME``/``MLOPS_REGISTRY_PASSWORD``
(the children inherit them).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from pytest_mlops.config import load_config
from pytest_mlops.deploy.bundle import build_bundle
from pytest_mlops.deploy.ledgered import LedgeredRegistry
from pytest_mlops.deploy.promote import deploy_to_staging, promote
from pytest_mlops.deploy.registries import open_registry
from pytest_mlops.deploy.registry import LocalRegistry, RegistryBackend
from pytest_mlops.deploy.settings import deploy_settings
from pytest_mlops.errors import DeployError
from pytest_mlops.export import export_onnx
from pytest_mlops.report.json import ReportEntry, build_report, write_report
from pytest_mlops.results import CheckResult

CONFIG = """\
model = "model.onnx"
current = "data.csv"
target = "y"
[deploy]
name = "{name}"
registry = "{registry}"
smoke_rows = 4
"""

# The registered model's name: "tiny", or a name of its own per run on a shared MLflow server.
MODEL = "tiny"

WORKER = textwrap.dedent(
    """
    import json, random, shutil, sys
    from pathlib import Path
    from pytest_mlops.config import load_config
    from pytest_mlops.deploy.bundle import canonical_json, verify_bundle
    from pytest_mlops.deploy.promote import promote, rollback
    from pytest_mlops.deploy.registries import open_registry
    from pytest_mlops.deploy.settings import deploy_settings
    from pytest_mlops.errors import DeployError

    settings = deploy_settings(load_config(Path(sys.argv[1]) / "mlops.toml"))
    registry, name = open_registry(settings), settings.name
    source, work, seed = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    pushes = sys.argv[5] == "push"
    rng = random.Random(seed)
    versions = [v.version for v in registry.versions(name)]
    for i in range(10_000):
        op = rng.random() * (1.0 if pushes else 0.8)
        try:
            if op < 0.45:
                promote(registry, name, version=rng.choice(versions[:3]))
            elif op < 0.8:
                rollback(registry, name)
            else:  # push a new bundle (same files, a new manifest, so a new digest)
                dest = work / f"b{seed}-{i}"
                shutil.copytree(source, dest)
                manifest = json.loads((dest / "manifest.json").read_bytes())
                manifest["lineage"]["created"]["nonce"] = f"{seed}-{i}"
                (dest / "manifest.json").write_bytes(canonical_json(manifest))
                registry.push(verify_bundle(dest))
        except DeployError:
            pass
    """
)


def make_project(
    root: Path,
    registry: str = "registry",
    base_image: str | None = None,
    ca_bundle: str | None = None,
) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    frame["y"] = (frame.a > 0).astype(int)
    frame.to_csv(root / "data.csv", index=False)
    model = LogisticRegression().fit(frame[list("abcd")].to_numpy(np.float32), frame.y)
    export_onnx(model, frame[list("abcd")].to_numpy(np.float32)[:4], root / "model.onnx")
    config = CONFIG.format(registry=registry, name=MODEL)
    if base_image:
        config += f'base_image = "{base_image}"\n'
    if ca_bundle:
        config += f'ca_bundle = "{ca_bundle}"\n'
    (root / "mlops.toml").write_text(config)
    return root


def open_project_registry(root: Path) -> RegistryBackend:
    return open_registry(deploy_settings(load_config(root / "mlops.toml")))


def ledger_of(registry: RegistryBackend) -> LocalRegistry:
    """The SQLite + files store that holds the versions and the audit log."""
    ledger = getattr(registry, "ledger", registry)  # the OCI backend keeps a ledger
    assert isinstance(ledger, LocalRegistry)
    return ledger


def make_versions(root: Path, n: int) -> list[Path]:
    registry = open_project_registry(root)
    bundles = []
    for i in range(n):
        result = CheckResult.threshold(
            name="accuracy", kind="accuracy", metric="roc_auc", value=0.95 + i / 1000, min=0.9
        )
        report = write_report(
            root / f"report-{i}.json",
            build_report([ReportEntry("mlops.toml::accuracy", "passed", result)], exitstatus=0),
        )
        bundle = build_bundle(load_config(root / "mlops.toml"), root / f"bundle-{i}", report=report)
        deploy_to_staging(registry, bundle)
        bundles.append(bundle.path)
    promote(registry, MODEL, version=1)
    return bundles


def check_invariants(root: Path, reconciled: list[str] | None = None) -> list[str]:
    """Everything a crash must not break; the list of what is broken (empty: all good).

    On a remote backend (OCI, MLflow) the stage pointers and the remote's ledger copy are
    checked too; a pointer found one move ahead of the log is reconciled and its stage appended
    to *reconciled*.
    """
    problems = []
    backend = open_project_registry(root)
    registry = ledger_of(backend)
    with sqlite3.connect(registry.root / "registry.db") as db:
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("sqlite integrity_check failed")
    if isinstance(backend, LedgeredRegistry):
        problems += check_pointers(backend, registry, reconciled if reconciled is not None else [])
        problems += check_remote_ledger(backend)
    events = registry.history(MODEL)
    seqs = [e.seq for e in events]
    if seqs != sorted(set(seqs)):
        problems.append("audit sequence numbers are not increasing")
    for stage in ("staging", "production"):
        current = registry.stage(MODEL, stage)
        if current is None:
            problems.append(f"{stage} points nowhere")
            continue
        try:
            registry.verify(current)
        except DeployError as exc:
            problems.append(f"{stage} -> v{current.version} does not verify: {exc}")
        moves = [e for e in events if e.stage == stage]
        if not moves or moves[-1].version != current.version:
            problems.append(f"the last {stage} event does not name v{current.version}")
        for before, after in itertools.pairwise(moves):
            if after.previous_version != before.version:
                problems.append(f"{stage} event {after.seq} skips event {before.seq}")
    for version in registry.versions(MODEL):
        try:
            registry.verify(version)
        except DeployError as exc:
            problems.append(f"v{version.version} is listed but incomplete: {exc}")
    return problems


def check_pointers(
    backend: LedgeredRegistry, ledger: LocalRegistry, reconciled: list[str]
) -> list[str]:
    """The remote stage pointers (OCI tags, MLflow aliases) name verified versions, and follow
    the log once reconciled."""
    problems = []
    references = {}
    for version in ledger.versions(MODEL):
        try:
            backend.verify(version)  # the ledger's bytes and the remote copy
        except DeployError as exc:
            problems.append(f"the remote copy of v{version.version} does not verify: {exc}")
            continue
        references[backend._reference(version)] = version.version
    for stage in ("staging", "production"):
        pointed = backend._pointed(MODEL, stage)
        unreadable = str(pointed).startswith("unreadable")
        if pointed not in references and not unreadable:
            problems.append(f"the remote {stage} pointer names {pointed}, no verified version")
            continue
        if backend.reconcile(MODEL, stage):
            reconciled.append(f"{stage} (was {pointed})" if unreadable else stage)
        current = ledger.stage(MODEL, stage)
        if current is None or backend._pointed(MODEL, stage) != backend._reference(current):
            problems.append(f"the remote {stage} pointer does not follow the log after reconciling")
    return problems


def check_remote_ledger(backend: LedgeredRegistry) -> list[str]:
    """The ledger copy the remote's record names is there, matches its sha256 and is a sound
    database."""
    state = backend._ledger_state()
    if int(state["generation"]) == 0:
        return []
    data = backend._read_ledger(state)
    if hashlib.sha256(data).hexdigest() != state["sha256"]:
        return [f"the ledger copy {state} does not match the sha256 its record holds"]
    with tempfile.NamedTemporaryFile(suffix=".db") as copy:
        copy.write(data)
        copy.flush()
        with sqlite3.connect(copy.name) as db:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return [f"the ledger copy {state} fails SQLite's integrity check"]
    return []


def kill_trials(
    root: Path,
    source: Path,
    trials: int,
    seed: int,
    *,
    pushes: bool = True,
    max_delay: float = 0.8,
) -> dict[str, float]:
    rng = random.Random(seed)
    work = root / "work"
    work.mkdir()
    failures: list[str] = []
    reconciled: list[str] = []
    delays = []
    events_before = len(open_project_registry(root).history(MODEL))
    started = time.perf_counter()
    for trial in range(trials):
        delay = rng.uniform(0.05, max_delay)
        delays.append(delay)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(root),
                str(source),
                str(work),
                str(trial),
                "push" if pushes else "no-push",
            ]
        )
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        problems = check_invariants(root, reconciled)
        if problems:
            failures.append(f"trial {trial} (killed after {delay:.3f} s): {problems}")
        shutil.rmtree(work)
        work.mkdir()
    registry = open_project_registry(root)
    print(f"kill trials: {trials}, kill delay {min(delays):.2f}-{max(delays):.2f} s after start")
    print(
        f"  audit events written by killed processes: {len(registry.history(MODEL)) - events_before}"
    )
    print(f"  versions in the registry afterwards: {len(registry.versions(MODEL))}")
    if registry is not ledger_of(registry):
        ahead = [r for r in reconciled if "unreadable" not in r]
        print(f"  stage pointers found one move ahead of the log, then reconciled: {len(ahead)}")
        print(
            "  stage tags the registry could not read back (a client killed mid-upload), put "
            f"back from the ledger: {len(reconciled) - len(ahead)}"
        )
    print(f"  trials with a broken invariant: {len(failures)} of {trials}")
    for line in failures[:10]:
        print("   ", line)
    print(f"  ({time.perf_counter() - started:.1f} s)")
    return {"trials": trials, "failures": len(failures), "pointers_reconciled": len(reconciled)}


CONCURRENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_mlops.config import load_config
    from pytest_mlops.deploy.promote import promote
    from pytest_mlops.deploy.registries import open_registry
    from pytest_mlops.deploy.settings import deploy_settings
    settings = deploy_settings(load_config(Path(sys.argv[1]) / "mlops.toml"))
    registry = open_registry(settings)
    for i in range(int(sys.argv[3])):
        promote(registry, settings.name, version=int(sys.argv[2]) if i % 2 == 0 else 1)
    """
)


def concurrent_promotions(root: Path, workers: int, each: int) -> dict[str, float]:
    registry = open_project_registry(root)
    before = len([e for e in registry.history(MODEL) if e.stage == "production"])
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, str(root), str(2 + i % 2), str(each)])
        for i in range(workers)
    ]
    codes = [p.wait() for p in procs]
    moves = [e for e in registry.history(MODEL) if e.stage == "production"]
    broken = sum(after.previous_version != b.version for b, after in itertools.pairwise(moves))
    print(
        f"concurrent promotions: {workers} processes x {each}: exit codes {codes}, "
        f"{len(moves) - before} production moves recorded, {broken} broken links in the chain"
    )
    return {"broken": broken}


def byte_flips(root: Path, trials: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    refused = 0
    for _ in range(trials):
        registry = open_project_registry(root)
        target = registry.get(MODEL, rng.choice([2, 3]))
        rel, digest = rng.choice(sorted(target.manifest["files"].items()))
        blob = ledger_of(registry).blob_path(digest)
        original = blob.read_bytes()
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        blob.write_bytes(bytes(data))
        before = registry.stage(MODEL, "production")
        try:
            promote(registry, MODEL, version=target.version)
        except DeployError:
            refused += 1
        after = registry.stage(MODEL, "production")
        assert after is not None
        assert before is not None
        if after.version == target.version and before.version != target.version:
            print(f"  NOT refused: flipped a bit of {rel} of v{target.version}")
        blob.write_bytes(original)
    print(f"byte flips: {refused} of {trials} promotions of a tampered version refused")
    return {"refused": refused, "trials": trials}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-delay",
        type=float,
        default=0.8,
        help="kill each child at most this many seconds after its start (default 0.8; a slower "
        "registry, e.g. one checking a bcrypt password on every request, needs more)",
    )
    parser.add_argument("--backend", choices=("embedded", "oci", "mlflow"), default="embedded")
    parser.add_argument(
        "--mlflow",
        default=os.environ.get("MLOPS_TEST_MLFLOW"),
        help="http://HOST:PORT of the MLflow server (default: $MLOPS_TEST_MLFLOW)",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get("MLOPS_TEST_REGISTRY"),
        help="HOST:PORT of the OCI registry (default: $MLOPS_TEST_REGISTRY)",
    )
    parser.add_argument(
        "--ca-bundle",
        help="PEM file of the CA of the registry's (or MLflow server's) TLS certificate",
    )
    parser.add_argument(
        "--base-image",
        default=os.environ.get("MLOPS_TEST_BASE_IMAGE"),
        help="base image of the serving images (default: $MLOPS_TEST_BASE_IMAGE)",
    )
    args = parser.parse_args()
    if args.backend == "oci" and not (args.registry and args.base_image):
        parser.error(
            "--backend oci needs --registry and --base-image (or MLOPS_TEST_REGISTRY and "
            "MLOPS_TEST_BASE_IMAGE: bash scripts/services.sh writes them to its env file)"
        )
    if args.backend == "mlflow" and not args.mlflow:
        parser.error("--backend mlflow needs --mlflow (or MLOPS_TEST_MLFLOW)")
    with tempfile.TemporaryDirectory(prefix="mlops-kill-") as tmp:
        if args.backend == "mlflow":
            global MODEL
            MODEL = f"tiny-{os.getpid()}-{int(time.time())}"
            root = make_project(Path(tmp), f"mlflow+{args.mlflow}", ca_bundle=args.ca_bundle)
        elif args.backend == "oci":
            repository = f"kill-{os.getpid()}-{int(time.time())}"
            root = make_project(
                Path(tmp), f"oci://{args.registry}/{repository}", args.base_image, args.ca_bundle
            )
        else:
            root = make_project(Path(tmp))
        print(f"backend: {open_project_registry(root).location}")
        bundles = make_versions(root, 3)
        kills = kill_trials(
            root,
            bundles[0],
            args.trials,
            args.seed,
            pushes=args.backend != "oci",
            max_delay=args.max_delay,
        )
        concurrent = concurrent_promotions(root, 4, 10)
        flips = byte_flips(root, 30, args.seed)
        print(json.dumps({"kill": kills, "concurrent": concurrent, "byte_flips": flips}))
        ok = (
            kills["failures"] == 0
            and concurrent["broken"] == 0
            and flips["refused"] == flips["trials"]
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
