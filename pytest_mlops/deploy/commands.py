"""The deploy subcommands of ``pytest-mlops``: package, push, promote, rollback, history, serve.

Each takes ``--config`` (default: ``mlops.toml`` or ``pyproject.toml`` in the current directory)
and ``--registry`` (default: the config's ``[deploy] registry``, else ``.mlops/registry``).
Exit codes: 0 done, 1 refused for lack of evidence, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig
    from pytest_mlops.deploy.registry import RegistryBackend
    from pytest_mlops.deploy.settings import DeploySettings

__all__ = ["add"]

Sub = "argparse._SubParsersAction[argparse.ArgumentParser]"
EXIT_OK, EXIT_REFUSED = 0, 1


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="mlops.toml or pyproject.toml (default: found in .)")
    parser.add_argument(
        "--registry",
        help="registry directory, oci://HOST:PORT/REPO or mlflow+http://HOST:PORT",
    )
    parser.add_argument("--name", help="model name in the registry (default: from the config)")


def _project(args: argparse.Namespace) -> tuple[ProjectConfig, DeploySettings]:
    from pytest_mlops.config import find_config_file, load_config
    from pytest_mlops.deploy.settings import deploy_settings

    here = Path.cwd()
    path = find_config_file(here, args.config)
    config = load_config(path, base_dir=path.parent if path else here)
    overrides = {
        "registry": args.registry,
        "name": args.name,
        "base_image": getattr(args, "base_image", None),
    }
    return config, deploy_settings(config, overrides)


def _registry(settings: DeploySettings) -> RegistryBackend:
    from pytest_mlops.deploy.registries import open_registry

    return open_registry(settings)


# --- package -------------------------------------------------------------------------------


def _cmd_package(args: argparse.Namespace) -> int:
    from pytest_mlops.deploy.bundle import build_bundle

    config, settings = _project(args)
    report = args.report or config.settings.report
    if report and not Path(report).is_file() and args.report is None:
        report = None
    output = Path(args.output) if args.output else config.base_dir / "build" / "bundle"
    if report is None:
        print(
            "pytest-mlops package: no test report (--report or the 'report' setting): the bundle "
            "carries no evidence and cannot be deployed to staging or production",
            file=sys.stderr,
        )
    bundle = build_bundle(config, output, report=report, settings=settings)
    print(f"bundle {bundle.digest} at {bundle.path}")
    print(f"  model {bundle.model_sha256}, evidence verdict {bundle.verdict}")
    return EXIT_OK


def _add_package(sub: Any) -> None:
    p = sub.add_parser("package", help="bundle the model, its lineage, the server and a Dockerfile")
    _common(p)
    p.add_argument(
        "--report", help="the JSON report of the passing run (default: 'report' setting)"
    )
    p.add_argument("--output", help="bundle directory (default: build/bundle next to the config)")
    p.set_defaults(func=_refusals(_cmd_package))


# --- push ----------------------------------------------------------------------------------


def _cmd_push(args: argparse.Namespace) -> int:
    from pytest_mlops.deploy.bundle import verify_bundle
    from pytest_mlops.deploy.promote import deploy_to_staging

    config, settings = _project(args)
    path = Path(args.bundle) if args.bundle else config.base_dir / "build" / "bundle"
    bundle = verify_bundle(path)
    registry = _registry(settings)
    if args.to == "none":
        version = registry.push(bundle)
        print(f"pushed {version.label} ({version.digest}) to {registry.location}")
        return EXIT_OK
    deployment = deploy_to_staging(registry, bundle, why=args.why or "")
    if deployment.smoke is not None:
        print(deployment.smoke.message)
    print(deployment.describe())
    return EXIT_OK


def _add_push(sub: Any) -> None:
    p = sub.add_parser(
        "push", help="push a bundle; with --to staging also smoke-test and deploy it"
    )
    _common(p)
    p.add_argument("bundle", nargs="?", help="bundle directory (default: build/bundle)")
    p.add_argument("--to", choices=("staging", "none"), default="staging")
    p.add_argument("--why", help="reason recorded in the audit log")
    p.add_argument("--base-image", dest="base_image", help="serving image base (OCI registries)")
    p.set_defaults(func=_refusals(_cmd_push))


# --- promote / rollback --------------------------------------------------------------------


def _cmd_promote(args: argparse.Namespace) -> int:
    from pytest_mlops.deploy.promote import promote

    _, settings = _project(args)
    deployment = promote(
        _registry(settings),
        settings.name,
        to=args.to,
        version=args.version,
        report=args.report,
        why=args.why or "",
    )
    print(deployment.describe())
    return EXIT_OK


def _add_promote(sub: Any) -> None:
    p = sub.add_parser("promote", help="promote a version on its evidence (default: staging's)")
    _common(p)
    p.add_argument("--to", default="production", choices=("staging", "production"))
    p.add_argument("--version", type=int, help="version number (default: what staging runs)")
    p.add_argument("--report", help="the passing JSON report (default: the one in the bundle)")
    p.add_argument("--why", help="reason recorded in the audit log")
    p.set_defaults(func=_refusals(_cmd_promote))


def _cmd_rollback(args: argparse.Namespace) -> int:
    from pytest_mlops.deploy.promote import rollback

    _, settings = _project(args)
    deployment = rollback(
        _registry(settings),
        settings.name,
        stage=args.stage,
        to_version=args.to_version,
        why=args.why or "",
    )
    print(deployment.describe())
    return EXIT_OK


def _add_rollback(sub: Any) -> None:
    p = sub.add_parser("rollback", help="re-point a stage to the version it ran before")
    _common(p)
    p.add_argument("--stage", default="production", choices=("staging", "production"))
    p.add_argument("--to-version", dest="to_version", type=int, help="a specific version")
    p.add_argument("--why", help="reason recorded in the audit log")
    p.set_defaults(func=_cmd_rollback)


# --- history -------------------------------------------------------------------------------


def _cmd_history(args: argparse.Namespace) -> int:
    _, settings = _project(args)
    registry = _registry(settings)
    events = registry.history(settings.name)
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2))
        return EXIT_OK
    stages = {s: registry.stage(settings.name, s) for s in ("staging", "production")}
    print(f"{settings.name} in {registry.location}")
    for stage, version in stages.items():
        print(
            f"  {stage:<10} {version.label + ' ' + version.digest[:19] + '...' if version else '-'}"
        )
    if not events:
        print("no deployments yet")
        return EXIT_OK
    print(
        f"\n{'#':>4}  {'when':<25} {'stage':<10} {'action':<9} {'version':<8} {'digest':<20} {'who':<12} why / evidence"
    )
    for e in events[-args.limit :]:
        verdict = e.evidence.get("verdict")
        smoke = (e.evidence.get("smoke") or {}).get("status")
        remote = e.evidence.get("mlflow_model_version") or e.evidence.get("image")
        proof = ", ".join(
            f"{k}={v}" for k, v in (("report", verdict), ("smoke", smoke), ("at", remote)) if v
        )
        line = f"{e.seq:>4}  {e.at:<25} {e.stage:<10} {e.action:<9} v{e.version:<7} {e.digest[:19]:<20} {e.who:<12} {e.why}"
        print(line + (f" [{proof}]" if proof else ""))
    return EXIT_OK


def _add_history(sub: Any) -> None:
    p = sub.add_parser("history", help="the audit log: who moved which version where, when, why")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the events as JSON")
    p.add_argument("--limit", type=int, default=50, help="show the last N events (default 50)")
    p.set_defaults(func=_cmd_history)


# --- serve ---------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    import tempfile

    from pytest_mlops.deploy.registries import resolve_version

    try:
        from pytest_mlops.deploy import serving
    except ImportError as exc:
        raise DeployError(
            f"serving needs {exc.name or 'a package'}: pip install 'pytest-mlops[deploy,onnxruntime]'"
        ) from None

    _, settings = _project(args)
    registry = _registry(settings)
    ref = f"v{args.version}" if args.version else args.stage
    version = resolve_version(registry, settings.name, ref, f"registry:{ref}")
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as tmp:
        bundle = registry.checkout(version, Path(tmp) / "bundle")
        options = serving.ServingOptions(
            model=str(bundle.model_path),
            name=settings.name,
            version=str(version.version),
            host=args.host,
            port=args.port,
            prediction_log=args.prediction_log or settings.prediction_log,
            drain_seconds=settings.drain_seconds,
            shutdown_timeout=settings.shutdown_timeout,
        )
        serving.run_server(options)
    return EXIT_OK


def _add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a stage's (verified) model over OIP v2 REST")
    _common(p)
    p.add_argument("--stage", default="production", choices=("staging", "production"))
    p.add_argument("--version", type=int, help="serve this version instead of a stage's")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--prediction-log", dest="prediction_log", help="append served rows (JSON lines)"
    )
    p.set_defaults(func=_cmd_serve)


# --- manifests -----------------------------------------------------------------------------


def _cmd_manifests(args: argparse.Namespace) -> int:
    from pytest_mlops.deploy.k8s import render_manifests, write_manifests

    _, settings = _project(args)
    registry = _registry(settings)
    version = registry.stage(settings.name, args.stage)
    if version is None:
        raise DeployError(f"nothing of {settings.name!r} is in {args.stage}: deploy it first")
    if args.runtime == "triton":
        return _triton_manifests(args, settings, registry, version)
    image = args.image or version.image
    if not image:
        raise DeployError(
            f"{version.label} has no image (the embedded and MLflow registries store bundles): "
            "pass --image, or use an oci:// registry"
        )
    canary = registry.stage(settings.name, "staging") if args.stage == "production" else None
    if canary is not None and canary.version == version.version:
        canary = None
    docs = render_manifests(
        settings,
        args.stage,
        version,
        image,
        canary=canary,
        canary_image=(args.canary_image or (canary.image if canary else None)),
    )
    out = write_manifests(docs, args.output or f"build/k8s/{settings.name}-{args.stage}.yaml")
    print(f"{len(docs)} manifests for {version.label} in {args.stage}: {out}")
    return EXIT_OK


def _triton_manifests(
    args: argparse.Namespace, settings: DeploySettings, registry: RegistryBackend, version: Any
) -> int:
    """A Triton model repository of the version and a KServe InferenceService serving it."""
    import tempfile

    from pytest_mlops.deploy.k8s import render_inference_service, write_manifests
    from pytest_mlops.deploy.triton import write_repository

    if not args.storage_uri:
        raise DeployError(
            "--runtime triton needs --storage-uri: where you will upload the model repository "
            "(s3://..., gs://..., pvc://...), which the InferenceService reads"
        )
    out = Path(args.output or f"build/k8s/{settings.name}-{args.stage}-kserve.yaml")
    repository = out.parent / "triton"
    with tempfile.TemporaryDirectory(prefix="mlops-triton-") as tmp:
        bundle = registry.checkout(version, Path(tmp) / "bundle")
        config = write_repository(
            bundle.model_path, repository, settings.name, version.version, settings
        )
    doc = render_inference_service(settings, args.stage, version, args.storage_uri)
    write_manifests([doc], out)
    print(
        f"Triton model repository of {version.label}: {config.parent} (upload it to {args.storage_uri})"
    )
    print(f"KServe InferenceService for {args.stage}: {out}")
    return EXIT_OK


def _add_manifests(sub: Any) -> None:
    p = sub.add_parser(
        "manifests",
        help="Kubernetes Deployment and Service for a stage (or Triton + a KServe InferenceService)",
    )
    _common(p)
    p.add_argument("--stage", default="production", choices=("staging", "production"))
    p.add_argument(
        "--runtime",
        choices=("oip", "triton"),
        default="oip",
        help="oip: our serving image (default); triton: a Triton model repository and a KServe "
        "InferenceService",
    )
    p.add_argument("--storage-uri", dest="storage_uri", help="where the Triton repository goes")
    p.add_argument("--image", help="image reference (default: the version's pushed image)")
    p.add_argument("--canary-image", dest="canary_image", help="image of the canary (staging)")
    p.add_argument("--output", help="YAML file (default: build/k8s/NAME-STAGE.yaml)")
    p.set_defaults(func=_cmd_manifests)


def _refusals(handler: Any) -> Any:
    """Policy refusals (no evidence, failed smoke test) exit 1; bad input still exits 2."""

    def run(args: argparse.Namespace) -> int:
        import sys

        try:
            return int(handler(args))
        except DeployError as exc:
            if not str(exc).startswith(("refusing", "smoke test")):
                raise
            print(f"pytest-mlops {args.command}: {exc}", file=sys.stderr)
            return EXIT_REFUSED

    return run


_COMMANDS = (
    _add_package,
    _add_push,
    _add_promote,
    _add_rollback,
    _add_history,
    _add_serve,
    _add_manifests,
)


def add(sub: Any) -> None:
    """Register package, push, promote, rollback, history, serve and manifests with *sub*."""
    for add_command in _COMMANDS:
        add_command(sub)
