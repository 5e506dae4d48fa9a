"""Where the stack's configuration files are: packaged with the distribution, or the source tree.

A wheel carries `infrastructure/` as the data package `watchfloor_stack.infrastructure` (root
pyproject.toml maps it), so an installed `watchfloor-local` needs no checkout. Run from sources
(`PYTHONPATH=libs`, as `make tools` does before any virtualenv exists, or an editable install,
whose finder does not map a data-only folder), the same files are the tree's own `infrastructure/`.
`WATCHFLOOR_INFRASTRUCTURE_DIR` points at another copy (a site's edited configuration).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[2] / "infrastructure"


def infrastructure() -> Path:
    explicit = os.environ.get("WATCHFLOOR_INFRASTRUCTURE_DIR")
    if explicit:
        return Path(explicit)
    try:
        packaged = Path(str(resources.files("watchfloor_stack.infrastructure")))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and (packaged / "prometheus").is_dir():
        return packaged
    if (_SOURCE_TREE / "prometheus").is_dir():
        return _SOURCE_TREE
    raise FileNotFoundError(
        "watchfloor's infrastructure files are neither packaged nor in a source tree "
        f"({_SOURCE_TREE}); reinstall watchfloor-stack or set WATCHFLOOR_INFRASTRUCTURE_DIR"
    )
