"""The pinned Go servers (Prometheus, Alertmanager, Jaeger, ...): built once per release from the
Go module proxy into a cache outside the repository, and found there by local mode and the tests.

`make tools` runs `python3 -m watchfloor_stack.gotools build` before any virtualenv exists, so
this module imports the standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from watchfloor_stack.assets import infrastructure

TOOLS_DIR = infrastructure() / "tools"
MANIFEST = TOOLS_DIR / "versions.toml"


@dataclass(frozen=True)
class Tool:
    name: str
    image: str | None  # None: a tool the tests use that Compose does not run (a linter)
    release: str
    module: str
    binaries: dict[str, str]
    tags: tuple[str, ...]
    ldflags: tuple[str, ...]
    verify: str

    @property
    def folder(self) -> Path:
        """The committed Go module that pins this tool's module version and dependencies."""
        return TOOLS_DIR / self.name

    def fingerprint(self) -> str:
        """Changes whenever what would be built changes: go.mod, go.sum or the build flags."""
        digest = hashlib.sha256()
        for part in ("go.mod", "go.sum"):
            digest.update((self.folder / part).read_bytes())
        digest.update(repr((self.binaries, self.tags, self.ldflags)).encode())
        return digest.hexdigest()[:12]

    def install_dir(self) -> Path:
        return cache_dir() / f"{self.name}-{self.release}-{self.fingerprint()}"

    def path(self, binary: str) -> Path | None:
        """The built binary, if `make tools` finished building this release."""
        folder = self.install_dir()
        return folder / binary if (folder / ".complete").exists() else None


def cache_dir() -> Path:
    explicit = os.environ.get("WATCHFLOOR_TOOLS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "watchfloor" / "tools"


def load() -> dict[str, Tool]:
    raw = tomllib.loads(MANIFEST.read_text())
    return {
        name: Tool(
            name=name,
            image=entry.get("image"),
            release=entry["release"],
            module=entry["module"],
            binaries=dict(entry["binaries"]),
            tags=tuple(entry["tags"]),
            ldflags=tuple(entry["ldflags"]),
            verify=entry["verify"],
        )
        for name, entry in raw.items()
    }


def variable(binary: str) -> str:
    """The environment variable that points at a binary: promtool -> PROMTOOL_BIN,
    victoria-metrics -> VICTORIA_METRICS_BIN."""
    return f"{binary.upper().replace('-', '_')}_BIN"


def pinned(binary: str) -> Path | None:
    """The built binary of the pinned release, or None when `make tools` has not built it."""
    for tool in load().values():
        if binary in tool.binaries:
            return tool.path(binary)
    raise KeyError(f"{binary} is not a tool in {MANIFEST}")


class BuildError(RuntimeError):
    pass


def _go_env() -> dict[str, str]:
    # The committed go.sum is the lock: never rewrite it, never fetch another toolchain.
    return {**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


def _run_go(args: list[str], cwd: Path, what: str) -> str:
    result = subprocess.run(  # noqa: S603 - the go command with our arguments
        [shutil.which("go") or "go", *args],
        cwd=cwd,
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(f"  | {line}" for line in result.stderr.strip().splitlines()[-15:])
        hint = ""
        if any(word in result.stderr for word in ("proxy", "dial tcp", "403", "404", "lookup")):
            proxy = os.environ.get("GOPROXY") or "the default GOPROXY"
            hint = f"\nThe Go module proxy ({proxy}) did not serve a module; check the network."
        raise BuildError(f"{what} failed:\n{tail}{hint}")
    return result.stdout


def _check_release(tool: Tool) -> None:
    """The module version in go.mod must be the release the manifest names."""
    source = Path(
        _run_go(["list", "-m", "-f", "{{.Dir}}", tool.module], tool.folder, "go list").strip()
    )
    for line in (source / tool.verify).read_text(errors="replace").splitlines():
        if re.search(r"\d+\.\d+\.\d+", line):
            if tool.release not in line:
                raise BuildError(
                    f"{tool.name}: {tool.folder / 'go.mod'} pins a module whose {tool.verify} "
                    f"says {line.strip()!r}, not release {tool.release}"
                )
            return
    raise BuildError(f"{tool.name}: no version line in {tool.verify} of {source}")


def build(tool: Tool, log: bool = True) -> Path:
    """Build every binary of `tool` into its cache folder unless it is already there."""
    target = tool.install_dir()
    if (target / ".complete").exists():
        if log:
            print(f"{tool.name} {tool.release}: cached in {target}")
        return target
    started = time.monotonic()
    if log:
        print(f"{tool.name} {tool.release}: building (first time for this release; minutes)...")
    _run_go(["mod", "download", tool.module], tool.folder, f"downloading {tool.module}")
    _check_release(tool)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    flags = " ".join(flag.replace("{release}", tool.release) for flag in tool.ldflags)
    packages = [
        tool.module if package == "." else f"{tool.module}/{package}"
        for package in tool.binaries.values()
    ]
    args = ["build", "-trimpath", "-ldflags", flags, "-o", f"{partial}/"]
    if tool.tags:
        args += ["-tags", ",".join(tool.tags)]
    _run_go([*args, *packages], tool.folder, f"building {tool.name} {tool.release}")
    for binary in tool.binaries:
        if not (partial / binary).is_file():
            raise BuildError(f"{tool.name}: go build made no {binary}")
    (partial / ".complete").write_text(tool.release + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    if log:
        print(
            f"{tool.name} {tool.release}: built in {time.monotonic() - started:.0f} s -> {target}"
        )
    return target


def env_lines(tools: dict[str, Tool]) -> tuple[list[str], list[str]]:
    """`export NAME_BIN=path` for every built binary, and the names not built."""
    found, missing = [], []
    for tool in tools.values():
        for binary in tool.binaries:
            path = tool.path(binary)
            if path is None:
                missing.append(f"{binary} {tool.release}")
            else:
                found.append(f"{variable(binary)}={shlex.quote(str(path))}")
    return found, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make tools", description="Build the pinned Go servers the tests and local mode run."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="build what is not cached yet")
    make.add_argument("names", nargs="*", help="tools to build (default: all in versions.toml)")
    make.add_argument(
        "--if-go", action="store_true", help="warn and succeed when Go is not installed"
    )
    commands.add_parser("env", help="print export lines for the built binaries")
    args = parser.parse_args(argv)
    tools = load()
    if args.command == "env":
        found, missing = env_lines(tools)
        if found:
            print("export " + " ".join(found))
        if missing:
            print(f"# not built (run `make tools`): {', '.join(missing)}", file=sys.stderr)
        return 1 if missing else 0
    unknown = sorted(set(args.names) - set(tools))
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(tools)}")
    if shutil.which("go") is None:
        message = (
            "make tools: Go is not installed. Install Go >= 1.26.6 (https://go.dev/doc/install, "
            "or your distribution's golang package), or point PROMETHEUS_BIN, ALERTMANAGER_BIN, "
            "JAEGER_BIN, ... at release binaries."
        )
        print(message, file=sys.stderr)
        return 0 if args.if_go else 1
    try:
        for name in args.names or tools:
            build(tools[name])
    except BuildError as exc:
        print(f"make tools: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
