"""Is a CUDA device present? Answered without importing anything heavy unless needed."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess

__all__ = ["cuda_available"]


@functools.lru_cache(maxsize=1)
def cuda_available() -> tuple[bool, str]:
    """``(True, device name)`` or ``(False, why not)``."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return True, torch.cuda.get_device_name(0)
        return False, "torch.cuda.is_available() is False"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "no NVIDIA driver (nvidia-smi not found) and torch is not installed"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603 - an argument list, no shell
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"nvidia-smi failed: {exc}"
    first = out.stdout.strip().splitlines()[:1]
    return (True, first[0]) if out.returncode == 0 and first else (False, "nvidia-smi lists no GPU")
