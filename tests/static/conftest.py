"""The Compose stack as Compose resolves it with the .env a first `make up` writes.

`compose` and `raw_compose` are parametrized over the profiles (tests/compose_merge.py): the
single-node stack (`base`, make up) and the scale profile merged over it (`scale`, make
up-scale), so every check of the Compose model holds for both; `profile` names the one a test
runs with, for the few figures that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.compose_merge import BASE_FILE, PROFILES, load_profile, raw_profile
from watchfloor_stack.compose.dotenv import GENERATED, generate, parse

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = BASE_FILE
ENV_EXAMPLE = REPO / ".env.example"


def first_run_env() -> dict[str, str]:
    return {
        name: generate(name) if value == GENERATED else value
        for name, value in parse(ENV_EXAMPLE.read_text()).items()
    }


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return first_run_env()


@pytest.fixture(scope="session", params=list(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def compose(env: dict[str, str], profile: str) -> dict[str, Any]:
    return load_profile(PROFILES[profile], env)


@pytest.fixture(scope="session")
def raw_compose(profile: str) -> dict[str, Any]:
    return raw_profile(PROFILES[profile])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/static/" in str(item.fspath):
            item.add_marker(pytest.mark.static)
