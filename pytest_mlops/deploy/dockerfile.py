"""The serving image's Dockerfile and the OCI labels that carry a bundle's lineage.

Plain text from the deploy settings and the lineage manifest: the bundle writes the Dockerfile,
:mod:`pytest_mlops.deploy.image` builds it, the registries label what they push.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_mlops.deploy.settings import DeploySettings

__all__ = ["LABEL_PREFIX", "image_labels", "render_dockerfile"]

LABEL_PREFIX = "io.pytest-mlops"


def image_labels(lineage: Mapping[str, Any], name: str) -> dict[str, str]:
    """OCI labels that carry the lineage (strings only, as labels must be)."""
    code = lineage.get("code", {})
    data = lineage.get("data", {})
    evidence = lineage.get("evidence", {})
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.description": f"{name} served over the Open Inference Protocol v2",
        "org.opencontainers.image.created": str(lineage.get("created", {}).get("at", "")),
        "org.opencontainers.image.revision": str(code.get("commit") or "unknown"),
        f"{LABEL_PREFIX}.git.dirty": str(code.get("dirty")).lower(),
        f"{LABEL_PREFIX}.model.sha256": str(lineage.get("model", {}).get("sha256", "")),
        f"{LABEL_PREFIX}.report.sha256": str(evidence.get("report_sha256") or ""),
        f"{LABEL_PREFIX}.report.verdict": str(evidence.get("verdict", "none")),
        f"{LABEL_PREFIX}.created.by": str(lineage.get("created", {}).get("by", "")),
    }
    for split in ("reference", "current"):
        if split in data:
            labels[f"{LABEL_PREFIX}.data.{split}"] = str(data[split]["fingerprint"])
    return labels


def render_dockerfile(settings: DeploySettings, lineage: Mapping[str, Any]) -> str:
    """The bundle's Dockerfile: configurable base, wheels offline, non-root, HEALTHCHECK, labels."""
    labels = " \\\n      ".join(
        f"{key}={json.dumps(value)}" for key, value in image_labels(lineage, settings.name).items()
    )
    port = settings.port
    probe = (
        "import os, urllib.request; urllib.request.urlopen("
        "'http://127.0.0.1:%s/v2/health/ready' % os.environ.get('MLOPS_SERVE_PORT', '8080'), "
        "timeout=2)"
    )
    return f"""# The serving image of {settings.name}: ONNX Runtime behind the Open Inference Protocol v2.
# Build context: this bundle plus wheels/ (pip download on the host); nothing is fetched here.
ARG BASE_IMAGE={settings.base_image}
FROM ${{BASE_IMAGE}}
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/serve \\
 && /opt/serve/bin/python -m pip install --no-index --no-cache-dir --find-links /tmp/wheels \\
      --disable-pip-version-check -q -r /tmp/wheels/requirements.txt \\
 && rm -rf /tmp/wheels
LABEL {labels}
COPY model.onnx manifest.json smoke.json /app/
COPY serving/ /app/serving/
ENV MLOPS_SERVE_MODEL=/app/model.onnx \\
    MLOPS_SERVE_NAME={settings.name} \\
    MLOPS_SERVE_HOST=0.0.0.0 \\
    MLOPS_SERVE_PORT={port} \\
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /app
EXPOSE {port}
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \\
  CMD ["/opt/serve/bin/python", "-c", {json.dumps(probe)}]
STOPSIGNAL SIGTERM
CMD ["/opt/serve/bin/python", "-m", "serving"]
"""
