"""The GitHub Actions workflows: linted by actionlint, validated against GitHub's workflow schema,
and doing what issue 11 asks of CI (.ci/run; make up, e2e on that stack, logs on failure, down)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.binaries import pinned_binary
from tests.static.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# A typo'd input and an injectable expression: both linters must refuse these.
BROKEN = """on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: {fetch-depht: 1}
      - run: echo ${{ github.event.pull_request.title }}
"""


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return loaded


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pinned_binary("actionlint"), "-no-color", "-oneline", *map(str, paths)],
                          capture_output=True, text=True, check=False, cwd=REPO)  # fmt: skip


def _schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, check=False)  # fmt: skip


def test_there_are_workflows():
    assert [p.name for p in WORKFLOWS] == ["ci.yml"]


def test_actionlint_accepts_the_workflows_and_refuses_a_broken_one(tmp_path: Path):
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    refused = _actionlint(broken)
    assert refused.returncode == 1
    assert '"fetch-depht" is not defined' in refused.stdout
    assert "potentially untrusted" in refused.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflows_validate_against_githubs_schema(path: Path, tmp_path: Path):
    result = _schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / path.name
    broken.write_text(path.read_text().replace("runs-on:", "run-on:", 1))
    assert _schema(broken).returncode != 0


def test_one_job_runs_what_ci_run_runs():
    suite = _workflow("ci.yml")["jobs"]["suite"]
    runs = [step.get("run", "") for step in suite["steps"]]
    assert any(run.strip().endswith(".ci/run") for run in runs)
    # .ci/run installs Debian 12's packages (the compatibility test's Prometheus 2.42).
    assert suite["container"] == "debian:12"
    assert any(step.get("uses", "").startswith("actions/setup-go@") for step in suite["steps"])


def test_the_docker_job_runs_make_up_the_e2e_suite_collects_logs_and_takes_the_stack_down():
    job = _workflow("ci.yml")["jobs"]["compose"]
    assert job["runs-on"].startswith("ubuntu-")  # Docker Engine and Compose v2 preinstalled
    assert job["env"]["WATCHFLOOR_REQUIRE_DOCKER"] == "1"
    steps = job["steps"]
    runs = [step.get("run", "") for step in steps]
    up = next(i for i, run in enumerate(runs) if run.startswith("make up"))
    e2e = next(i for i, run in enumerate(runs) if "pytest tests/e2e" in run)
    assert up < e2e
    collect = next(i for i, run in enumerate(runs) if "logs" in run and "ps --all" in run)
    assert steps[collect]["if"] == "failure()"
    upload = next(
        i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert steps[upload]["if"] == "failure()" and collect < upload
    assert steps[-1]["run"].strip() == "make down" and steps[-1]["if"] == "always()"


def test_make_validate_runs_the_static_tests_that_check_the_workflows():
    makefile = (REPO / "Makefile").read_text()
    validate = makefile.split("\nvalidate:", 1)[1].split("\n\n", 1)[0]
    assert "pytest -m static" in validate and "tools" in validate.splitlines()[0]
