"""The package version, in a module of its own so that any module can stamp it on what it writes
without importing the public API (:mod:`pytest_mlops`)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
