"""``pytest-mlops init-ci``: write the CI templates into a repository.

The templates live in ``ci-templates/`` (shipped in the package as ``pytest_mlops/ci_templates``):

- ``github``: ``.github/workflows/mlops-gates.yml`` (a reusable workflow with the stages),
  ``.github/workflows/mlops.yml`` (the caller: pull requests and the default branch),
  ``.github/workflows/mlops-monitor.yml`` (the scheduled drift monitor) and
  ``.github/actions/mlops-setup/action.yml`` (Python and the cached virtual environment).
- ``gitlab``: ``.gitlab-ci.yml`` (stages, merge-request rules, manual production, the monitor).

Nothing is overwritten without ``force``: an existing file is an error that names it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from pytest_mlops.errors import MlopsError, choices_text, did_you_mean

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # importlib.abc.Traversable is deprecated from 3.12
        from importlib.abc import Traversable

__all__ = ["PLATFORMS", "Platform", "init_ci", "template_files"]

Platform = Literal["github", "gitlab"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)

#: template (under ci-templates/) -> where it goes in the user's repository
TEMPLATES: Mapping[Platform, Mapping[str, str]] = {
    "github": {
        "github/workflows/mlops-gates.yml": ".github/workflows/mlops-gates.yml",
        "github/workflows/mlops.yml": ".github/workflows/mlops.yml",
        "github/workflows/mlops-monitor.yml": ".github/workflows/mlops-monitor.yml",
        "github/actions/mlops-setup/action.yml": ".github/actions/mlops-setup/action.yml",
    },
    "gitlab": {"gitlab/mlops.gitlab-ci.yml": ".gitlab-ci.yml"},
}


def _root() -> Traversable:
    return resources.files("pytest_mlops") / "ci_templates"


def template_files(platform: str) -> dict[str, str]:
    """The templates of *platform* as ``{target path: text}``.

    Raises
    ------
    MlopsError
        For an unknown platform (the message lists the valid ones).
    """
    if platform not in TEMPLATES:
        raise MlopsError(
            f"unknown CI platform {platform!r}{did_you_mean(platform, PLATFORMS)}; "
            f"choose {choices_text(PLATFORMS)}"
        )
    root = _root()
    out: dict[str, str] = {}
    for source, target in TEMPLATES[cast(Platform, platform)].items():
        node = root.joinpath(*source.split("/"))
        try:
            out[target] = node.read_text(encoding="utf-8")
        except OSError as exc:  # pragma: no cover - a broken installation
            raise MlopsError(
                f"the CI template {source!r} is missing from pytest-mlops: {exc}"
            ) from None
    return out


def init_ci(platform: str, directory: str | Path = ".", *, force: bool = False) -> list[Path]:
    """Write the CI templates of *platform* into the repository at *directory*.

    Parameters
    ----------
    platform:
        ``"github"`` or ``"gitlab"``.
    directory:
        The repository root; missing folders are created.
    force:
        Overwrite files that exist. Without it, an existing file is an error and nothing is
        written at all.

    Returns
    -------
    list of Path
        The files written.
    """
    files = template_files(platform)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise MlopsError(f"--dir {str(root)!r} is a file, not a directory")
    existing = [root / target for target in files if (root / target).exists()]
    if existing and not force:
        names = ", ".join(repr(str(p)) for p in existing)
        raise MlopsError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}: not overwritten "
            "(pass --force to replace, or merge the template by hand from ci-templates/)"
        )
    from pytest_mlops._files import write_atomic

    written = []
    for target, text in files.items():
        path = root / target
        written.append(write_atomic(path, text, what="the CI file"))
    return written


def add_init_ci(sub: Any) -> None:
    """Register ``pytest-mlops init-ci`` on the CLI's subparsers."""
    parser = sub.add_parser(
        "init-ci",
        help="write the CI templates (GitHub Actions or GitLab CI) into a repository",
        description="Write the pytest-mlops CI pipeline into a repository: "
        + "; ".join(f"{p}: {', '.join(TEMPLATES[p].values())}" for p in PLATFORMS),
    )
    parser.add_argument("platform", choices=PLATFORMS, help="the CI system")
    parser.add_argument("--dir", default=".", help="the repository root (default: .)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    parser.set_defaults(func=_cmd_init_ci)


def _cmd_init_ci(args: argparse.Namespace) -> int:
    for path in init_ci(args.platform, args.dir, force=args.force):
        print(f"wrote {path}")
    print("next: review the settings at the top of each file, then commit (see docs/ci.md)")
    return 0
