"""The Compose profiles the tests check, merged by the tooling's compose-go rules
(watchfloor_stack.compose.compose_file) the way `docker compose -f a.yml -f b.yml` merges them.
The e2e suite compares the result with `docker compose config` on a Docker host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from watchfloor_stack.compose.compose_file import load_merged as load_profile
from watchfloor_stack.compose.compose_file import merge_all

__all__ = ["BASE_FILE", "PROFILES", "SCALE_FILE", "load_profile", "merge_all", "raw_profile"]

REPO = Path(__file__).resolve().parents[1]
BASE_FILE = REPO / "docker-compose.monitoring.yml"
SCALE_FILE = REPO / "docker-compose.scale.yml"
# The stacks `make up` and `make up-scale` start: the files, in the order Compose gets them.
PROFILES: dict[str, tuple[Path, ...]] = {"base": (BASE_FILE,), "scale": (BASE_FILE, SCALE_FILE)}


def raw_profile(files: Sequence[Path]) -> dict[str, Any]:
    """The files merged as written (variables not interpolated)."""
    return merge_all([yaml.safe_load(path.read_text()) for path in files])
