"""The pinned Go servers for tests: the binaries `make tools` built at the releases Compose pins.

An explicit NAME_BIN (PROMTOOL_BIN, ...) wins, as in local mode. A test that needs one skips with
the command that builds it; under `make test` (WATCHFLOOR_REQUIRE_TOOLS=1) a missing one fails.
"""

from __future__ import annotations

import os

import pytest

from watchfloor_stack import gotools


def pinned_binary(binary: str) -> str:
    """Path of `binary` (prometheus, promtool, alertmanager, amtool, jaeger, pushgateway,
    node_exporter) at the pinned release; skips, or fails under make test, when absent."""
    explicit = os.environ.get(gotools.variable(binary))
    if explicit:
        return explicit
    built = gotools.pinned(binary)
    if built is not None:
        return str(built)
    why = f"{binary} at the pinned release is not built: run `make tools`"
    if os.environ.get("WATCHFLOOR_REQUIRE_TOOLS") == "1":
        pytest.fail(why)
    pytest.skip(why)
