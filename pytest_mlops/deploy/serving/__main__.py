"""``python -m serving`` (in a bundle or image) or ``python -m pytest_mlops.deploy.serving``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
