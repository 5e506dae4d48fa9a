"""What `make up`'s helpers import, as pip requirements read from pyproject.toml.

The helpers (`python -m watchfloor.stack`) need PyYAML (the compose file) and the `stack` extra;
`make up` installs just these into its own virtualenv, pinned by requirements.lock. It runs
before any virtualenv exists, so this module imports the standard library only.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Core dependencies the helpers import (the rest of the core serves the library's users).
CORE = ("pyyaml",)


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    core = [
        spec
        for spec in project["dependencies"]
        if re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower() in CORE
    ]
    if len(core) != len(CORE):
        raise SystemExit(f"{pyproject} lacks one of {', '.join(CORE)} in [project].dependencies")
    return [*core, *project.get("optional-dependencies", {}).get("stack", [])]


if __name__ == "__main__":
    print(" ".join(requirements(Path(sys.argv[1]))))
