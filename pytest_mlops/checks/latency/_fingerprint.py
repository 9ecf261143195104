"""Where a latency was measured: the machine, the device and the software.

Latencies from two machines are not comparable; :meth:`Fingerprint.differences` names what differs
so a baseline comparison can refuse to mix them.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["Fingerprint", "cpu_model", "package_versions"]

# fields that make two measurements incomparable when they differ
IDENTITY_FIELDS = (
    "cpu_model",
    "logical_cores",
    "usable_cores",
    "machine",
    "system",
    "device",
    "gpu_name",
    "backend",
    "providers",
    "threads",
)


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of *names* (only those installed), read from package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class Fingerprint:
    """The machine, device and software a measurement ran on."""

    device: str
    backend: str
    providers: tuple[str, ...] = ()
    threads: int | None = None
    gpu_name: str | None = None
    cpu_model: str = field(default_factory=cpu_model)
    logical_cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    usable_cores: int = field(default_factory=_usable_cores)
    machine: str = field(default_factory=platform.machine)
    system: str = field(default_factory=platform.system)
    python: str = field(default_factory=platform.python_version)
    versions: Mapping[str, str] = field(default_factory=dict)

    def differences(self, other: Fingerprint) -> list[str]:
        """``["cpu_model: 'A' here, 'B' there", ...]`` for each identity field that differs."""
        out = []
        for name in IDENTITY_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name}: {_show(mine)} here, {_show(theirs)} in the baseline")
        return out

    def version_changes(self, other: Fingerprint) -> list[str]:
        """Software whose version differs (reported, but not a reason to refuse)."""
        names = sorted(set(self.versions) | set(other.versions))
        return [
            f"{n} {other.versions.get(n, '-')} -> {self.versions.get(n, '-')}"
            for n in names
            if self.versions.get(n) != other.versions.get(n)
        ]

    def describe(self) -> str:
        where = self.gpu_name if self.device.startswith("cuda") else self.cpu_model
        return f"{self.backend} on {self.device} ({where}, {self.usable_cores} cores)"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["providers"] = list(self.providers)
        data["versions"] = dict(self.versions)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["providers"] = tuple(known.get("providers", ()))
        known["versions"] = dict(known.get("versions", {}))
        return cls(**known)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)
