"""`make up`'s .env: generated once, completed later, never rewritten."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

from watchfloor_stack.compose.dotenv import GENERATED, ensure_env, parse

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / ".env.example"


def test_first_run_fills_every_placeholder_with_a_distinct_alphanumeric_secret(tmp_path: Path):
    env = tmp_path / ".env"
    ensure_env(EXAMPLE, env)
    values = parse(env.read_text())
    template = parse(EXAMPLE.read_text())
    generated = {k: v for k, v in values.items() if template[k] == GENERATED}
    assert len(generated) == 17
    assert len(set(generated.values())) == len(generated)
    for name, value in generated.items():
        assert re.fullmatch(r"[A-Za-z0-9]+", value), name
        assert len(value) >= (64 if name.endswith("_KEY") else 32), name
    # Everything else is the example's value, comments included.
    assert {k: v for k, v in values.items() if k not in generated} == {
        k: v for k, v in template.items() if k not in generated
    }
    assert "# --- Network" in env.read_text()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_later_runs_keep_every_value_and_add_only_missing_settings(tmp_path: Path):
    env = tmp_path / ".env"
    ensure_env(EXAMPLE, env)
    before = parse(env.read_text())
    # An older .env: a user's change, and two settings that arrived later.
    lines = [
        line
        for line in env.read_text().splitlines()
        if not line.startswith(("GRAFANA_SECRET_KEY=", "JAEGER_RETENTION_DAYS="))
    ]
    env.write_text("\n".join(lines).replace("GRAFANA_PORT=3000", "GRAFANA_PORT=3300"))
    added = ensure_env(EXAMPLE, env)
    after = parse(env.read_text())
    assert added == ["GRAFANA_SECRET_KEY", "JAEGER_RETENTION_DAYS"]
    assert after["GRAFANA_PORT"] == "3300"
    assert after["JAEGER_RETENTION_DAYS"] == before["JAEGER_RETENTION_DAYS"]
    assert after["GRAFANA_SECRET_KEY"] not in {GENERATED, before["GRAFANA_SECRET_KEY"]}
    assert all(after[k] == v for k, v in before.items() if k not in added and k != "GRAFANA_PORT")
    assert ensure_env(EXAMPLE, env) == []  # idempotent


def test_the_cli_fills_a_hand_copied_env_and_never_prints_secrets(tmp_path: Path):
    env = tmp_path / ".env"
    command = [sys.executable, "-m", "watchfloor_stack.compose", "--env-file", str(env), "env"]
    first = subprocess.run(command, capture_output=True, text=True, check=False)
    assert first.returncode == 0 and "created" in first.stdout
    for value in parse(env.read_text()).values():
        if len(value) >= 32:
            assert value not in first.stdout + first.stderr
    env.write_text(EXAMPLE.read_text().replace("GRAFANA_PORT=3000", "GRAFANA_PORT=3300"))
    copied = subprocess.run(command, capture_output=True, text=True, check=False)  # cp'd by hand
    assert copied.returncode == 0 and "ELASTIC_PASSWORD" in copied.stdout
    values = parse(env.read_text())
    assert GENERATED not in values.values() and values["GRAFANA_PORT"] == "3300"
