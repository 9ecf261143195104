"""The embedded registry and promotion policy: evidence, rollback, audit log, integrity."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from deploy_helpers import FEATURES, fresh_bundle, project_config, write_report_file

from pytest_mlops.deploy.bundle import verify_bundle
from pytest_mlops.deploy.promote import deploy_to_staging, promote, rollback
from pytest_mlops.deploy.registries import resolve_model_reference
from pytest_mlops.deploy.registry import LocalRegistry
from pytest_mlops.errors import ConfigError, DeployError


def registry_of(root: Path) -> LocalRegistry:
    return LocalRegistry(root / "registry")


def production_version(registry: LocalRegistry) -> int:
    version = registry.stage("tiny", "production")
    assert version is not None, "nothing in production"
    return version.version


def test_staging_production_rollback_and_history(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    first = deploy_to_staging(registry, fresh_bundle(tiny_project, 1), why="first")
    assert first.smoke is not None
    assert first.smoke.passed, first.smoke
    assert promote(registry, "tiny", why="ship it").event is not None
    second = deploy_to_staging(registry, fresh_bundle(tiny_project, 2))
    assert second.version.version == 2
    assert production_version(registry) == 1  # staging moved, production not
    promote(registry, "tiny")
    assert production_version(registry) == 2
    back = rollback(registry, "tiny", why="bad canary")
    assert back.version.version == 1
    assert production_version(registry) == 1
    history = registry.history("tiny")
    assert [(e.stage, e.action, e.version, e.previous_version) for e in history] == [
        ("staging", "deploy", 1, None),
        ("production", "promote", 1, None),
        ("staging", "deploy", 2, 1),
        ("production", "promote", 2, 1),
        ("production", "rollback", 1, 2),
    ]
    assert history[1].why == "ship it"
    assert history[-1].why == "bad canary"
    assert history[1].evidence["verdict"] == "passed"
    assert history[1].evidence["smoke"]["status"] == "passed"
    assert history[1].evidence["model_sha256"] == registry.get("tiny", 1).model_sha256
    assert all(e.who and e.at for e in history)


def test_same_bundle_twice_is_one_version(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    bundle = fresh_bundle(tiny_project, 1)
    assert registry.push(bundle).version == registry.push(bundle).version == 1


def test_registry_production_reference_loads_the_promoted_model(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    promote(registry, "tiny")
    model = resolve_model_reference("registry:production", project_config(tiny_project))
    frame = pd.read_csv(tiny_project / "data.csv")
    X = frame[FEATURES].to_numpy(np.float32)
    session = ort.InferenceSession(str(tiny_project / "model.onnx"))
    expected = session.run(None, {session.get_inputs()[0].name: X})[1]
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-6)
    assert resolve_model_reference("registry:v1", project_config(tiny_project)).name == "tiny v1"


def test_reference_errors_name_the_stage(tiny_project: Path) -> None:
    config = project_config(tiny_project)
    with pytest.raises(DeployError, match="no version of 'tiny' is in production"):
        resolve_model_reference("registry:production", config)
    with pytest.raises(ConfigError, match="unknown stage 'prod'"):
        resolve_model_reference("registry:prod", config)


def test_failing_report_is_never_deployed(tiny_project: Path) -> None:
    from pytest_mlops.deploy.bundle import build_bundle

    report = write_report_file(tiny_project / "failed.json", passed=False)
    with pytest.raises(DeployError, match=r"refusing to package: .*verdict is 'failed'"):
        build_bundle(project_config(tiny_project), tiny_project / "b", report=report)
    assert not (tiny_project / "b").exists()
    bundle = build_bundle(project_config(tiny_project), tiny_project / "b", report=None)
    registry = registry_of(tiny_project)
    with pytest.raises(DeployError, match="report verdict is 'none'"):
        deploy_to_staging(registry, bundle)
    assert registry.versions("tiny") == []


def test_promotion_needs_a_staging_smoke_test(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    registry.push(fresh_bundle(tiny_project, 1))
    with pytest.raises(DeployError, match="no passing staging smoke test"):
        promote(registry, "tiny", version=1)
    assert registry.stage("tiny", "production") is None


def test_promotion_needs_the_report_the_version_was_packaged_with(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    other = write_report_file(tiny_project / "other.json", value=0.99)
    with pytest.raises(DeployError, match="not the evidence this version was packaged with"):
        promote(registry, "tiny", report=other)
    promote(registry, "tiny", report=tiny_project / "report-1.json")
    assert production_version(registry) == 1


def test_byte_flipped_bundle_is_refused_before_push(tiny_project: Path) -> None:
    bundle = fresh_bundle(tiny_project, 1)
    model = bundle.path / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(DeployError, match=r"model\.onnx.*modified or corrupted; refusing it"):
        verify_bundle(bundle.path)
    with pytest.raises(DeployError, match="refusing it"):
        registry_of(tiny_project).push(bundle)


def test_byte_flipped_registry_artifact_is_refused_before_deployment(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    version = registry.get("tiny", 1)
    blob = registry.blob_path(version.model_sha256)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DeployError, match=r"'model\.onnx' of tiny v1 does not match its digest"):
        promote(registry, "tiny")
    assert registry.stage("tiny", "production") is None
    with pytest.raises(DeployError, match="does not match its digest"):
        resolve_model_reference("registry:staging", project_config(tiny_project))


def test_corrupt_registry_entry_gives_a_clear_error(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    registry.push(fresh_bundle(tiny_project, 1))
    with sqlite3.connect(tiny_project / "registry" / "registry.db") as db:
        db.execute("UPDATE versions SET manifest = '{\"files\": ' WHERE version = 1")
    with pytest.raises(DeployError, match="the manifest of tiny v1 is unreadable"):
        registry.get("tiny", 1)


def test_corrupt_registry_database_gives_a_clear_error(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    registry.push(fresh_bundle(tiny_project, 1))
    (tiny_project / "registry" / "registry.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tiny_project / "registry" / f"registry.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(DeployError, match="unreadable or corrupt"):
        LocalRegistry(tiny_project / "registry").versions("tiny")


def test_audit_log_is_append_only(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    with sqlite3.connect(tiny_project / "registry" / "registry.db") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE events SET who = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM events")


def test_rollback_without_history_says_why(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    with pytest.raises(DeployError, match="nothing was ever deployed"):
        rollback(registry, "tiny")
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    promote(registry, "tiny")
    with pytest.raises(DeployError, match="first version it ever had"):
        rollback(registry, "tiny")
    with pytest.raises(DeployError, match="unknown stage 'prodution' - did you mean 'production'"):
        rollback(registry, "tiny", stage="prodution")


_WORKER = textwrap.dedent(
    """
    import sys
    from pytest_mlops.deploy.registry import LocalRegistry
    from pytest_mlops.deploy.promote import promote, rollback
    registry = LocalRegistry(sys.argv[1])
    for i in range(int(sys.argv[3])):
        promote(registry, "tiny", to="production", version=int(sys.argv[2]) if i % 2 == 0 else 1)
    """
)


def test_concurrent_promotions_serialise(tiny_project: Path) -> None:
    registry = registry_of(tiny_project)
    for n in (1, 2, 3):
        deploy_to_staging(registry, fresh_bundle(tiny_project, n))
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(registry.root), str(v), "6"])
        for v in (2, 3, 2, 3)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    events = [e for e in registry.history("tiny") if e.stage == "production"]
    # Each move saw the pointer the previous move left: no two promotions interleaved.
    for before, after in itertools.pairwise(events):
        assert after.previous_version == before.version
    assert events[-1].version == production_version(registry)
    seqs = [e.seq for e in registry.history("tiny")]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert json.loads(json.dumps([e.to_dict() for e in events]))  # the log is plain JSON


def _stored(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "blobs" / "sha256").iterdir())


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda db: db.write_bytes(b""), "is empty (0 bytes)"),
        (lambda db: db.unlink(), "is missing, but {n} artifact(s) are stored under"),
        (lambda db: db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84), "unreadable or corrupt"),
    ],
    ids=["empty", "missing", "corrupt"],
)
def test_a_lost_database_is_an_error_never_an_empty_registry(
    tiny_project: Path, damage, words, monkeypatch, capsys
) -> None:
    registry = registry_of(tiny_project)
    deploy_to_staging(registry, fresh_bundle(tiny_project, 1))
    root = tiny_project / "registry"
    blobs = _stored(root)
    for suffix in ("-wal", "-shm"):
        (root / f"registry.db{suffix}").unlink(missing_ok=True)
    damage(root / "registry.db")
    before = (root / "registry.db").read_bytes() if (root / "registry.db").exists() else None
    words = words.format(n=len(blobs))
    with pytest.raises(DeployError, match=re.escape(words)) as caught:
        LocalRegistry(root).history("tiny")
    assert str(root / "registry.db") in str(caught.value)
    assert "restore it from a backup" in str(caught.value)
    monkeypatch.chdir(tiny_project)
    from pytest_mlops.cli import main

    assert main(["history"]) == 2
    assert main(["push", "build/bundle-1", "--to", "none"]) == 2
    assert words in capsys.readouterr().err
    after = (root / "registry.db").read_bytes() if (root / "registry.db").exists() else None
    assert after == before
    assert _stored(root) == blobs


def test_a_new_registry_carries_its_marker_and_an_old_one_is_adopted(tiny_project: Path) -> None:
    from pytest_mlops.deploy.registry import _SCHEMA

    registry = registry_of(tiny_project)
    registry.push(fresh_bundle(tiny_project, 1))
    db = tiny_project / "registry" / "registry.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT format, version FROM registry_format").fetchall() == [
            ("pytest-mlops-registry", 1)
        ]
    old = tiny_project / "old-registry"
    (old / "blobs" / "sha256").mkdir(parents=True)
    with sqlite3.connect(old / "registry.db") as conn:
        conn.executescript(_SCHEMA)  # a registry made before the marker existed
    assert LocalRegistry(old).versions("tiny") == []
    with sqlite3.connect(old / "registry.db") as conn:
        assert conn.execute("SELECT format FROM registry_format").fetchall() == [
            ("pytest-mlops-registry",)
        ]


def test_a_foreign_database_is_not_taken_for_a_registry(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    root.mkdir()
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(DeployError, match=r"is not a registry \(tables \['customers'\]\)"):
        LocalRegistry(root).versions("tiny")


def test_a_ledger_says_where_its_remote_copy_is(tiny_project: Path) -> None:
    from pytest_mlops.deploy.oci import OciRegistry
    from pytest_mlops.deploy.settings import deploy_settings

    text = (tiny_project / "mlops.toml").read_text()
    (tiny_project / "mlops.toml").write_text(
        text.replace('registry = "registry"', 'registry = "oci://127.0.0.1:9/team/tiny"')
    )
    registry = OciRegistry(deploy_settings(project_config(tiny_project)))
    ledger = registry.ledger
    (ledger.root / "blobs" / "sha256").mkdir(parents=True)
    (ledger.root / "registry.db").write_bytes(b"")
    with pytest.raises(DeployError, match="is empty") as caught:
        ledger.versions("tiny")
    message = str(caught.value)
    assert "ledger that oci://127.0.0.1:9/team/tiny keeps" in message
    assert f"move {str(ledger.root)!r} aside" in message
