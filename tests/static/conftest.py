"""The Compose stack as Compose resolves it with the .env a first `make up` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from watchfloor_stack.compose.compose_file import load
from watchfloor_stack.compose.dotenv import GENERATED, generate, parse

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.monitoring.yml"
ENV_EXAMPLE = REPO / ".env.example"


def first_run_env() -> dict[str, str]:
    return {
        name: generate(name) if value == GENERATED else value
        for name, value in parse(ENV_EXAMPLE.read_text()).items()
    }


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return first_run_env()


@pytest.fixture(scope="session")
def compose(env: dict[str, str]) -> dict[str, Any]:
    return load(COMPOSE_FILE, env)


@pytest.fixture(scope="session")
def raw_compose() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return raw


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/static/" in str(item.fspath):
            item.add_marker(pytest.mark.static)
