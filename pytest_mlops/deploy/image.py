"""The serving image: its Dockerfile, the wheels it installs offline, and the build.

The build is hermetic: the Python packages the server needs (NumPy, ONNX Runtime, httptools
and their dependencies) are downloaded on the host with ``pip download`` into a cache outside the project
(``~/.cache/pytest-mlops/wheels``, or ``MLOPS_WHEEL_CACHE``), copied into the build context, and
installed with ``pip install --no-index``: nothing is fetched from inside the build. The image is
built through the Python ``docker`` SDK against whatever engine ``DOCKER_HOST`` names.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.deploy.dockerfile import LABEL_PREFIX, image_labels, render_dockerfile
from pytest_mlops.errors import DeployError

if TYPE_CHECKING:
    from pytest_mlops.deploy.bundle import Bundle

__all__ = [
    "LABEL_PREFIX",
    "build_image",
    "docker_client",
    "ensure_wheels",
    "image_labels",
    "render_dockerfile",
]


def serving_requirements() -> list[str]:
    """The server's packages, pinned to the versions installed here (so parity carries over)."""
    from importlib import metadata

    out = []
    for name in ("numpy", "onnxruntime", "httptools", "orjson"):
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if name != "orjson":  # optional: the server falls back to the json module
                out.append(name)
    return out


def wheel_cache() -> Path:
    return Path(
        os.environ.get("MLOPS_WHEEL_CACHE", Path.home() / ".cache" / "pytest-mlops" / "wheels")
    )


def ensure_wheels(python: str = "3.11", requirements: list[str] | None = None) -> Path:
    """Download the server's wheels for *python* (manylinux x86-64) once; return their folder."""
    requirements = requirements or serving_requirements()
    key = hashlib.sha256(json.dumps([python, sorted(requirements)]).encode()).hexdigest()[:16]
    folder = wheel_cache() / f"py{python}-{key}"
    if (folder / ".complete").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # parallel builds download once
        if not (folder / ".complete").is_file():
            _download(folder, python, requirements)
    return folder


def _download(folder: Path, python: str, requirements: list[str]) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
        "--platform", "manylinux_2_17_x86_64", "--dest", str(folder), *requirements,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - an argument list, no shell
    if done.returncode != 0:
        raise DeployError(
            f"cannot download the serving wheels ({', '.join(requirements)}) for Python "
            f"{python}: {done.stderr.strip()[-600:]}"
        )
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    (folder / ".complete").write_text("ok\n", encoding="utf-8")


def docker_client() -> Any:
    """A Docker SDK client for ``DOCKER_HOST``; a DeployError that says how to start one."""
    try:
        import docker
    except ImportError:
        raise DeployError(
            "building images needs the Docker SDK: pip install 'pytest-mlops[deploy]'"
        ) from None
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:
        raise DeployError(
            f"no container engine answers at {os.environ.get('DOCKER_HOST', 'the default socket')}: "
            f"{exc} (start dockerd, e.g. bash scripts/services.sh)"
        ) from None
    return client


def build_image(
    bundle: Bundle,
    tag: str,
    *,
    base_image: str | None = None,
    python: str = "3.11",
    client: Any = None,
) -> str:
    """Build the bundle's image as *tag*; return the image id. Wheels come from the host."""
    client = client or docker_client()
    wheels = ensure_wheels(python)
    with tempfile.TemporaryDirectory(prefix="mlops-build-") as tmp:
        context = Path(tmp)
        for rel in (*bundle.manifest["files"], "manifest.json"):
            target = context / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle.path / rel, target)
            target.chmod(0o644)  # the server runs as an unprivileged user
        shutil.copytree(wheels, context / "wheels", ignore=shutil.ignore_patterns(".complete"))
        buildargs = {"BASE_IMAGE": base_image} if base_image else {}
        try:
            image, _ = client.images.build(
                path=str(context),
                tag=tag,
                buildargs=buildargs,
                labels={f"{LABEL_PREFIX}.bundle.digest": bundle.digest},
                rm=True,
                forcerm=True,
                pull=False,
            )
        except Exception as exc:
            log = getattr(exc, "build_log", None) or []
            tail = "".join(str(c.get("stream", "")) for c in log if isinstance(c, dict))[-800:]
            raise DeployError(f"building the image {tag!r} failed: {exc}\n{tail}") from None
    return str(image.id)
