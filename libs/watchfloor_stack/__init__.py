"""watchfloor's stack tooling: the Compose helpers, local mode and the pinned Go tools.

A distribution of its own (the repository's root pyproject.toml), separate from the `watchfloor`
library that services import (libs/pyproject.toml).
"""
