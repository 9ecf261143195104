"""The alibi-detect backend's tests run only in their own environment (numpy < 2).

``scripts/test.sh`` builds it with ``scripts/setup-alibi.sh`` and runs these tests with
``MLOPS_ALIBI_TESTS=1``; the main test run (``python -m pytest -n 2``) skips this folder.
"""

from __future__ import annotations

import os

if os.environ.get("MLOPS_ALIBI_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]
