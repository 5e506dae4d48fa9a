"""The two distributions as users install them: wheels built from this tree, installed (not
editable) into fresh virtualenvs, run from a directory outside the checkout."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import free_port, local_env
from watchfloor.testing.beats import BeatsReceiver
from watchfloor_stack.localmode.components import DEFAULT_PORTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# What the library imports (libs/watchfloor), by distribution name; nothing else may be required
# unconditionally.
LIBRARY_IMPORTS = {
    "prometheus-client", "orjson", "python-logstash-async", "opentelemetry-api",
    "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
}  # fmt: skip


def _run(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    # From a copy: setuptools writes build/ and *.egg-info next to each pyproject.toml.
    source = tmp_path_factory.mktemp("source") / "watchfloor"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".local", "build", "*.egg-info", "__pycache__", ".*_cache", "node_modules",
    ))  # fmt: skip
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out,
        source / "libs", source, cwd=out,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    found = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    assert set(found) == {"watchfloor", "watchfloor_stack"}, found
    return found


def _venv(where: Path, *requirements: str | Path) -> Path:
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    installed = _run(
        python, "-m", "pip", "install", "--quiet", "-c", REPO / "requirements.lock", *requirements,
        cwd=where,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return python


def _metadata(wheel: Path) -> tuple[list[str], list[str], set[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(meta).decode())
        entry_points = [n for n in names if n.endswith("entry_points.txt")]
    requires = message.get_all("Requires-Dist") or []
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    return requires, entry_points, tops


def test_the_library_wheel_holds_the_library_and_requires_what_it_imports(wheels):
    requires, entry_points, tops = _metadata(wheels["watchfloor"])
    assert tops == {"watchfloor"}
    assert entry_points == [], "console scripts belong to the stack's distribution"
    unconditional = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
                     for r in requires if "extra ==" not in r}  # fmt: skip
    assert unconditional == LIBRARY_IMPORTS


@pytest.fixture(scope="module")
def library_only(tmp_path_factory: pytest.TempPathFactory, wheels) -> Path:
    return _venv(tmp_path_factory.mktemp("library-venv"), wheels["watchfloor"])


def test_the_library_alone_logs_and_names_the_extra_it_lacks(library_only: Path, tmp_path: Path):
    logged = _run(
        library_only, "-c",
        "from watchfloor.logging import configure_logging, shutdown_logging\n"
        "import logging\n"
        "configure_logging('outside', environment='test')\n"
        "logging.getLogger('outside').info('hello')\n"
        "shutdown_logging()\n",
        cwd=tmp_path, WATCHFLOOR_LOG_STREAM="stdout",
    )  # fmt: skip
    assert logged.returncode == 0, logged.stderr
    assert '"message":"hello"' in logged.stdout.replace(" ", "")
    missing = _run(library_only, "-c", "import watchfloor.fastapi", cwd=tmp_path)
    assert missing.returncode != 0
    assert "watchfloor[fastapi]" in missing.stderr, missing.stderr
    for absent in ("yaml", "uvicorn", "fastapi", "watchfloor_stack", "watchfloor_exporters"):
        probe = _run(library_only, "-c", f"import {absent}", cwd=tmp_path)
        assert probe.returncode != 0, f"{absent} came with the library"


@pytest.fixture(scope="module")
def stack_installed(tmp_path_factory: pytest.TempPathFactory, wheels) -> Path:
    return _venv(
        tmp_path_factory.mktemp("stack-venv"), wheels["watchfloor"], wheels["watchfloor_stack"]
    )


def test_an_installed_local_mode_needs_no_checkout(stack_installed: Path, tmp_path: Path):
    """The crash the issue reports: `watchfloor-local up` from a non-editable install looked for
    …/lib/python3.11/infrastructure/prometheus/prometheus.yml. Now it runs from anywhere."""
    scripts = stack_installed.parent
    state = tmp_path / "state"
    env = local_env(state, {name: free_port() for name in DEFAULT_PORTS})
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    up = _run(scripts / "watchfloor-local", "up", "--timeout", "180", cwd=tmp_path, **env)
    try:
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        rendered = (state / "prometheus" / "prometheus.yml").read_text()
        assert "rule_files" in rendered
        rules = (state / "prometheus" / "rules").resolve()
        assert "site-packages" in str(rules), rules
        assert any(rules.glob("*.yml"))
        status = _run(scripts / "watchfloor-local", "status", cwd=tmp_path, **env)
        assert status.returncode == 0, status.stdout
        assert "unhealthy" not in status.stdout
    finally:
        down = _run(scripts / "watchfloor-local", "down", cwd=tmp_path, **env)
        assert down.returncode == 0, down.stderr
    assert not list((state / "run").glob("*.pid"))


def test_installed_console_scripts_start(stack_installed: Path, tmp_path: Path):
    scripts = stack_installed.parent
    for script in ("watchfloor-trading-exporter", "watchfloor-pipeline-exporter",
                   "watchfloor-alerthub", "watchfloor-local"):  # fmt: skip
        shown = _run(scripts / script, "--help", cwd=tmp_path)
        assert shown.returncode == 0, f"{script}: {shown.stderr}"


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """Answers OTLP/HTTP trace exports with 200 and counts them (the span payloads themselves are
    checked against the real Jaeger in test_jaeger.py)."""

    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).exports += self.path == "/v1/traces"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module", params=["lowest", "newest"])
def service_venv(request, tmp_path_factory: pytest.TempPathFactory, wheels) -> Path:
    """The library as an outside service installs it: at the lowest versions its ranges allow
    (the lock's minus about two minors), or at the newest releases the index has today."""
    where = tmp_path_factory.mktemp(f"service-{request.param}")
    uv = Path(sys.executable).parent / "uv"
    made = _run(uv, "venv", "--quiet", "--python", sys.executable, where / "venv", cwd=where)
    assert made.returncode == 0, made.stderr
    python = where / "venv" / "bin" / "python"
    wheel = wheels["watchfloor"]
    if request.param == "lowest":
        project = tomllib.loads((REPO / "libs" / "pyproject.toml").read_text())["project"]
        wanted = [*project["dependencies"], *project["optional-dependencies"]["fastapi"]]
        uvicorn = next(line for line in (REPO / "requirements.lock").read_text().splitlines()
                       if line.startswith("uvicorn=="))  # fmt: skip
        steps = [["--resolution", "lowest-direct", *wanted, uvicorn], ["--no-deps", wheel]]
    else:
        steps = [[f"watchfloor[fastapi] @ {wheel.as_uri()}", "uvicorn", "--upgrade"]]
    for step in steps:
        installed = _run(uv, "pip", "install", "--quiet", "--python", python, *step, cwd=where)
        assert installed.returncode == 0, installed.stderr
    listed = _run(uv, "pip", "list", "--python", python, cwd=where)
    print(f"{request.param}:\n{listed.stdout}")
    return python


def test_a_service_outside_the_repository_ships_every_line_with_its_ids(
    service_venv: Path, tmp_path: Path
):
    _OtlpSink.exports = 0
    shutil.copy(REPO / "docs" / "examples" / "first_service.py", tmp_path)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    port = free_port()
    with BeatsReceiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHFLOOR_", "OTEL_"))}
        env.pop("PYTHONPATH", None)
        env.update(
            WATCHFLOOR_LOGSTASH_HOST="127.0.0.1",
            WATCHFLOOR_LOGSTASH_PORT=str(receiver.port),
            WATCHFLOOR_SPOOL_DIR=str(tmp_path / "spool"),
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink.server_address[1]}",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        stderr = (tmp_path / "stderr.log").open("wb")
        server = subprocess.Popen(
            [service_venv, "-m", "uvicorn", "first_service:app", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, (tmp_path / "stderr.log").read_text()
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "uvicorn did not answer in 30 s"
                    time.sleep(0.2)
            routed = httpx.post(f"{base}/orders/AAPL", params={"quantity": 5}, timeout=5)
            failed = httpx.get(f"{base}/fail", timeout=5)
            metrics = httpx.get(f"{base}/metrics", timeout=5)
            # The batch processor exports within OTEL_BSP_SCHEDULE_DELAY; seen while running,
            # not left to the exit flush.
            exported = time.monotonic() + 15
            while not _OtlpSink.exports and time.monotonic() < exported:
                time.sleep(0.1)
        finally:
            server.terminate()  # uvicorn's shutdown runs the library's flush
            server.wait(timeout=30)
            stderr.close()
            sink.shutdown()
        assert (routed.status_code, failed.status_code) == (200, 500)
        assert "http_server_requests_total" in metrics.text
        events = receiver.events

    shipped = events
    ids = {routed.headers["x-correlation-id"], failed.headers["x-correlation-id"]}
    own = [e for e in shipped if e.get("message") == "order routed"]
    access = [e for e in shipped if e["log"]["logger"] == "uvicorn.access"]
    errors = [e for e in shipped if "error" in e]
    assert len(own) == 1 and len(errors) == 1, shipped
    requests = [a for a in access if "/orders/AAPL" in a["message"] or "/fail" in a["message"]]
    assert len(requests) == 2, [e["message"] for e in shipped]
    for event in [*own, *errors, *requests]:
        assert event["correlation"]["id"] in ids, event
        assert len(event["trace"]["id"]) == 32, event
    assert own[0]["correlation"]["id"] == routed.headers["x-correlation-id"]
    assert errors[0]["correlation"]["id"] == failed.headers["x-correlation-id"]
    assert errors[0]["error"]["message"] == "venue connection lost"
    assert _OtlpSink.exports >= 1, (
        "no span export reached the OTLP endpoint:\n" + (tmp_path / "stderr.log").read_text()
    )
    # Nothing plain-text on stderr: every line the process wrote is ECS JSON.
    for line in (tmp_path / "stderr.log").read_text().splitlines():
        json.loads(line)
