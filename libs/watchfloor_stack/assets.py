"""Where the stack's data files are: packaged with the distribution, or the source tree.

A wheel carries `infrastructure/` as the data package `watchfloor_stack.infrastructure` and
`docs/runbooks` as `watchfloor_alerthub.runbooks` (root pyproject.toml maps them), so an installed
`watchfloor-local` and hub need no checkout. Run from sources (`PYTHONPATH=libs`, as `make tools`
does before any virtualenv exists, or an editable install, whose finder does not map a data-only
folder), the same files are the tree's own. `WATCHFLOOR_INFRASTRUCTURE_DIR` points at another copy
(a site's edited configuration).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[2]


def packaged(package: str) -> Path | None:
    """The folder of a data-only (namespace) package, if this installation carries it."""
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def infrastructure() -> Path:
    explicit = os.environ.get("WATCHFLOOR_INFRASTRUCTURE_DIR")
    if explicit:
        return Path(explicit)
    for folder in (packaged("watchfloor_stack.infrastructure"), _SOURCE_TREE / "infrastructure"):
        if folder is not None and (folder / "prometheus").is_dir():
            return folder
    raise FileNotFoundError(
        "watchfloor's infrastructure files are neither packaged nor in a source tree "
        f"({_SOURCE_TREE / 'infrastructure'}); reinstall watchfloor-stack or set "
        "WATCHFLOOR_INFRASTRUCTURE_DIR"
    )


def runbooks() -> Path:
    folder = packaged("watchfloor_alerthub.runbooks")
    return folder if folder is not None and folder.is_dir() else _SOURCE_TREE / "docs" / "runbooks"
