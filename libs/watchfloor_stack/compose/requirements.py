"""What `make up`'s helpers import, as pip requirements read from pyproject.toml.

The helpers (`python -m watchfloor_stack.compose`) need PyYAML (the compose file) and bcrypt (the
basic-auth hashes); `make up` installs just these into its own virtualenv, pinned by
requirements.lock, and runs the helpers from the checkout. It runs before any virtualenv exists,
so this module imports the standard library only.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

NEEDED = ("pyyaml", "bcrypt")


def requirements(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    found = [
        spec
        for spec in dependencies
        if re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower() in NEEDED
    ]
    if len(found) != len(NEEDED):
        raise SystemExit(f"{pyproject} lacks one of {', '.join(NEEDED)} in [project].dependencies")
    return found


if __name__ == "__main__":
    print(" ".join(requirements(Path(sys.argv[1]))))
