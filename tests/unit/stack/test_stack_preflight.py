"""`make up`'s pre-flight checks and Compose variable resolution.

Docker cannot run here, so the Docker CLI the checks call is a small script answering as a real
engine would (or would not); ports and vm.max_map_count are checked against this machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from watchfloor_stack.compose import cli, dotenv, preflight
from watchfloor_stack.compose.compose_file import (
    InterpolationError,
    interpolate,
    load,
    load_merged,
    memory_budget,
    memory_bytes,
)

REPO = Path(__file__).resolve().parents[3]
BASE_FILE = REPO / "docker-compose.monitoring.yml"
SCALE_FILE = REPO / "docker-compose.scale.yml"
GIB = 1024**3


def _fake_docker(tmp_path: Path, info: str, info_rc: int, compose_version: str | None) -> str:
    compose = (
        f'echo "{compose_version}"; exit 0' if compose_version else "echo 'not a docker command' >&2; exit 1"
    )  # fmt: skip
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> '{tmp_path / 'docker.log'}'\n"
        f"if [ \"$1\" = info ]; then printf %s '{info}'; exit {info_rc}; fi\n"
        f'if [ "$1" = compose ]; then {compose}; fi\n'
        "exit 2\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_docker_missing_daemon_down_permission_and_compose_v1_each_name_their_fix(
    tmp_path: Path,
):
    problems, _ = preflight.check_docker(str(tmp_path / "no-such-docker"))
    assert "not installed" in problems[0].what and "get-docker" in problems[0].fix
    down = _fake_docker(tmp_path, "Cannot connect to the Docker daemon", 1, "2.29.1")
    problems, _ = preflight.check_docker(down)
    assert "does not answer" in problems[0].what and "start the Docker daemon" in problems[0].fix
    denied = _fake_docker(tmp_path, "permission denied while trying to connect", 1, "2.29.1")
    problems, _ = preflight.check_docker(denied)
    assert "docker group" in problems[0].fix
    no_v2 = _fake_docker(tmp_path, json.dumps({"MemTotal": 16 * GIB}), 0, None)
    problems, info = preflight.check_docker(no_v2)
    assert len(problems) == 1 and "docker-compose-plugin" in problems[0].fix
    assert info["MemTotal"] == 16 * GIB
    old = _fake_docker(tmp_path, json.dumps({"MemTotal": 16 * GIB}), 0, "2.17.3")
    problems, _ = preflight.check_docker(old)
    assert "Compose 2.17.3 is too old" in problems[0].what and "upgrade" in problems[0].fix
    # 2.23.0 lacks inline configs (the web configs); the patch level counts.
    almost = _fake_docker(tmp_path, json.dumps({"MemTotal": 16 * GIB}), 0, "2.23.0")
    assert "2.23.1 or newer" in preflight.check_docker(almost)[0][0].what
    assert preflight.check_docker(_fake_docker(tmp_path, "{}", 0, "2.23.1"))[0] == []
    good = _fake_docker(tmp_path, json.dumps({"MemTotal": 16 * GIB}), 0, "v2.29.1")
    assert preflight.check_docker(good)[0] == []


def _env_file(tmp_path: Path, **settings: int) -> Path:
    """A new .env with every host port one that is free right now (anything on this machine may
    hold the defaults, a `make local-up` for one), then `settings`."""
    example = REPO / ".env.example"
    names = [name for name in dotenv.parse(example.read_text()) if name.endswith("_PORT")]
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as held:  # all held at once, so no two are the same port
        for name in names:
            probe = held.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={port}\n" for name, port in {**ports, **settings}.items()))
    dotenv.ensure_env(example, env_file)
    return env_file


def _config() -> dict[str, Any]:
    env = {"ELASTIC_PASSWORD": "x"}
    return load(REPO / "docker-compose.monitoring.yml", env, required=False)


def test_memory_is_checked_against_the_files_limits_plus_headroom():
    config = _config()
    budget = memory_budget(config)
    assert 7 * GIB < budget <= 8 * GIB
    assert preflight.check_memory(16 * GIB, config) == []
    problem = preflight.check_memory(8 * GIB, config)[0]
    assert "8.0 GiB" in problem.what and "exit 137" in problem.what
    assert "ELASTICSEARCH_HEAP" in problem.fix
    # Smaller limits in .env lower the requirement accordingly.
    small = load(REPO / "docker-compose.monitoring.yml",
                 {"ELASTICSEARCH_MEM_LIMIT": "1g", "KIBANA_MEM_LIMIT": "1g"}, required=False)  # fmt: skip
    assert memory_budget(small) == budget - GIB - 512 * 1024**2


def test_max_map_count_below_elasticsearch_minimum_is_reported_with_the_sysctl(tmp_path: Path):
    low = tmp_path / "max_map_count"
    low.write_text("65530\n")
    engine = {"OperatingSystem": "Debian GNU/Linux 12 (bookworm)"}
    problem = preflight.check_max_map_count(engine, low)[0]
    assert "65530" in problem.what and "sysctl -w vm.max_map_count=262144" in problem.fix
    # Docker Desktop's containers run in its VM, whose value is not this file's.
    assert preflight.check_max_map_count({"OperatingSystem": "Docker Desktop"}, low) == []
    low.write_text("262144\n")
    assert preflight.check_max_map_count(engine, low) == []


def test_a_port_taken_by_another_program_is_reported_unless_the_stack_holds_it():
    config = _config()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config["services"]["grafana"]["ports"] = [f"127.0.0.1:{port}:3000"]
        problems = [p for p in preflight.check_ports(config) if f":{port} " in p.what]
        assert len(problems) == 1 and "(grafana)" in problems[0].what
        assert "*_PORT" in problems[0].fix
        assert not [p for p in preflight.check_ports(config, {"grafana"}) if f":{port} " in p.what]


def test_compose_interpolation_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET}-$SET", env) == "value--value"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d d  d"
    assert interpolate("$${NOT_A_VARIABLE} $$HOME", env) == "${NOT_A_VARIABLE} $HOME"
    with pytest.raises(InterpolationError, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""
    assert memory_bytes("512m") == 512 * 1024**2 and memory_bytes("2g") == 2 * GIB
    assert memory_bytes("1536m") == memory_bytes("1.5g")
    with pytest.raises(ValueError, match="not a Compose byte value"):
        memory_bytes("lots")


def test_free_disk_below_elasticsearchs_flood_stage_plus_the_stacks_footprint_is_reported(
    tmp_path: Path,
):
    class Usage:
        def __init__(self, total: int, free: int) -> None:
            self.total, self.free = total, free

    engine = {"OperatingSystem": "Ubuntu 24.04", "DockerRootDir": str(tmp_path / "docker")}
    seen: list[Path] = []

    def usage(total: int, free: int):  # type: ignore[no-untyped-def]
        def measure(path: Path) -> Usage:
            seen.append(path)
            return Usage(total, free)

        return measure

    # 100 GiB disk: flood stage at 5 GiB free; with the 6 GiB footprint, 11 GiB is the minimum.
    assert preflight.check_disk(engine, usage(100 * GIB, 11 * GIB)) == []
    assert seen[-1] == tmp_path  # the data root does not exist yet: its nearest parent
    problem = preflight.check_disk(engine, usage(100 * GIB, 10 * GIB))[0]
    assert "10.0 GiB free" in problem.what and "5.0 GiB" in problem.what
    assert "read-only" in problem.what and "flood-stage" in problem.what
    assert "free at least 1.0 GiB" in problem.fix and "docker system prune" in problem.fix
    # A 4 TB disk: the flood stage's 5% is capped at 100 GiB of headroom.
    assert preflight.check_disk(engine, usage(4096 * GIB, 106 * GIB)) == []
    assert preflight.check_disk(engine, usage(4096 * GIB, 105 * GIB))
    # Docker Desktop keeps volumes on its VM's disk, which is not measurable from here.
    assert preflight.check_disk({"OperatingSystem": "Docker Desktop"}, usage(100 * GIB, 0)) == []


def test_preflight_reports_every_problem_in_one_run_and_points_to_local_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    no_compose = _fake_docker(tmp_path, json.dumps({"MemTotal": 6 * GIB,
                                                    "OperatingSystem": "Docker Desktop"}), 0, None)  # fmt: skip
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env_file = _env_file(tmp_path, GRAFANA_PORT=port)
        code = cli.main(["--env-file", str(env_file), "--docker", no_compose,
                         "--compose-file", str(REPO / "docker-compose.monitoring.yml"),
                         "preflight"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "Docker Compose v2 (`docker compose`) is missing" in err
    assert "Docker has 6.0 GiB of memory" in err
    assert f"127.0.0.1:{port} (grafana) is already in use" in err
    assert "make local-up" in err
    assert "3 pre-flight problem(s)" in err


def test_memory_is_checked_against_the_scale_profile_merged_over_the_base_file() -> None:
    env = {"ELASTIC_PASSWORD": "x"}
    base = load_merged([BASE_FILE], env, required=False)
    scale = load_merged([BASE_FILE, SCALE_FILE], env, required=False)
    assert base == load(BASE_FILE, env, required=False)
    assert round(memory_budget(base) / GIB, 1) == 8.0
    assert round(memory_budget(scale) / GIB, 1) == 17.8
    assert preflight.check_memory(16 * GIB, base) == []
    problem = preflight.check_memory(16 * GIB, scale)[0]
    assert "16.0 GiB of memory" in problem.what and "total 17.8 GiB" in problem.what


def _preflight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *compose_files: Path
) -> tuple[int, str]:
    env_file = _env_file(tmp_path)
    # Docker Desktop: no vm.max_map_count or disk check here, only memory and ports.
    engine = json.dumps({"MemTotal": 16 * GIB, "OperatingSystem": "Docker Desktop"})
    docker = _fake_docker(tmp_path, engine, 0, "2.29.1")
    files = [arg for path in compose_files for arg in ("--compose-file", str(path))]
    code = cli.main(["--env-file", str(env_file), "--docker", docker, *files, "preflight"])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_preflight_with_both_files_checks_the_scale_profiles_memory_and_containers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _preflight(tmp_path, capsys, BASE_FILE, SCALE_FILE)
    assert code == 1
    assert "Docker has 16.0 GiB of memory; the stack's limits total 17.8 GiB" in err
    assert "1 pre-flight problem(s)" in err
    # The profile's own running containers are asked of Compose with both files, in order.
    calls = (tmp_path / "docker.log").read_text().splitlines()
    ps = [call for call in calls if " ps " in call]
    assert ps and ps[0].startswith(f"compose -f {BASE_FILE} -f {SCALE_FILE} ps")


def test_preflight_with_the_base_file_alone_checks_its_own_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _preflight(tmp_path, capsys, BASE_FILE)
    assert code == 0, out
    assert "memory for the 8.0 GiB budget" in out  # plus 2 GiB headroom, within 16 GiB
    calls = (tmp_path / "docker.log").read_text().splitlines()
    assert any(call.startswith(f"compose -f {BASE_FILE} ps") for call in calls)


def test_preflight_names_a_compose_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _preflight(tmp_path, capsys, BASE_FILE, tmp_path / "missing.yml")
    assert code == 1 and "cannot read a compose file" in err and "missing.yml" in err
