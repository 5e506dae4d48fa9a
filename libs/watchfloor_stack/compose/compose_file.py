"""docker-compose.monitoring.yml as Compose resolves it: YAML, then variable interpolation.

Compose interpolates `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
`${VAR?error}` and `$$` in every string value after parsing. There is no maintained Python
implementation of the compose spec (docker-compose v1 is retired), and `docker compose config`
needs Docker, which CI does not have, so this small resolver is ours; the e2e suite checks the
real one agrees on a Docker host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate(value: str, env: Mapping[str, str], required: bool = True) -> str:
    """One value; `required=False` reads `${VAR:?...}` as empty instead of failing."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", ":?") and not current:
            current = None
        if current is not None:
            return current
        if op and op.endswith("?") and required:
            raise InterpolationError(f"{name}: {arg or 'required'}")
        return arg if op and op.endswith("-") else ""

    return _VARIABLE.sub(replace, value)


def variables(text: str) -> set[str]:
    """Every variable name the file's values use (escaped `$$` excluded)."""
    return {m["name"] or m["bare"] for m in _VARIABLE.finditer(text) if not m["escaped"]}


def load(path: Path, env: Mapping[str, str], required: bool = True) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    resolved: dict[str, Any] = _resolve(raw, env, required)
    return resolved


def _resolve(node: Any, env: Mapping[str, str], required: bool) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, required)
    if isinstance(node, list):
        return [_resolve(item, env, required) for item in node]
    if isinstance(node, dict):
        return {key: _resolve(value, env, required) for key, value in node.items()}
    return node


_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(limit: str | int) -> int:
    """Compose's byte values: 512m, 1g, 2048k, or a plain number of bytes."""
    if isinstance(limit, int):
        return limit
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg])?b?", limit.strip().lower())
    if match is None:
        raise ValueError(f"not a Compose byte value: {limit!r}")
    return int(float(match[1]) * _UNITS[match[2] or "b"])


def long_running(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that stay up (the one-shot setup jobs have restart: "no")."""
    return {
        name: service
        for name, service in config["services"].items()
        if service.get("restart", "no") != "no"
    }


def memory_budget(config: Mapping[str, Any]) -> int:
    """Sum of the long-running services' memory limits, in bytes."""
    return sum(memory_bytes(s["mem_limit"]) for s in long_running(config).values())
