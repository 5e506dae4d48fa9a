"""Compose files as Compose resolves them: YAML, variable interpolation, then the merge of
`docker compose -f a.yml -f b.yml`.

Compose interpolates `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
`${VAR?error}` and `$$` in every string value after parsing. There is no maintained Python
implementation of the compose spec (docker-compose v1 is retired), and `docker compose config`
needs Docker, which CI does not have, so this small resolver is ours; the e2e suite checks the
real one agrees on a Docker host.

The merge rules are compose-go's (override/merge.go and override/uncity.go, which docker compose
uses): mappings merge key by key and the later file wins a scalar; sequences are appended;
`command`, `entrypoint` and `healthcheck.test` are replaced; `environment` and the other
KEY=VALUE lists keep one entry per key (the later one); `depends_on` and `networks` merge as
mappings; `volumes`, `configs` and `secrets` keep one entry per container path, `ports` one per
mapping. Each file is interpolated on its own before the merge, as compose-go does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
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


def load_merged(
    paths: Sequence[Path], env: Mapping[str, str], required: bool = True
) -> dict[str, Any]:
    """The files interpolated with `env` one by one, then merged in order (later files win)."""
    return merge_all([load(path, env, required) for path in paths])


_Merger = Callable[[Any, Any, tuple[str, ...]], Any]


def merge_all(models: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for model in models:
        merged = _merge(merged, model, ())
    return merged


def _merge(base: Any, override: Any, path: tuple[str, ...]) -> Any:
    special = _special(path)
    if special is not None:
        return special(base, override, path)
    if override is None:
        return base
    if isinstance(base, dict) and isinstance(override, dict):
        return _merge_mappings(base, override, path)
    if isinstance(base, list) and isinstance(override, list):
        return _unique([*base, *override], path)
    return override


def _merge_mappings(
    base: dict[str, Any], override: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value, (*path, key)) if key in merged else value
    return merged


def _special(path: tuple[str, ...]) -> _Merger | None:
    if len(path) == 3 and path[0] == "services":
        return _SERVICE_MERGERS.get(path[2])
    if path[:1] == ("services",) and path[2:] == ("healthcheck", "test"):
        return _replace
    if len(path) == 4 and path[0] == "services" and path[2] == "ulimits":
        return _replace
    return None


def _replace(_: Any, override: Any, __: tuple[str, ...]) -> Any:
    return override


def _as_mapping(value: Any, default: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    mapping: dict[str, Any] = {}
    for item in value or []:
        key, separator, rest = str(item).partition("=")
        mapping[key] = rest if separator else (dict(default) if default else None)
    return mapping


def _key_values(base: Any, override: Any, _: tuple[str, ...]) -> dict[str, Any]:
    # Appended as KEY=VALUE, then one entry per key, the later one: a mapping update.
    return {**_as_mapping(base), **_as_mapping(override)}


def _depends_on(base: Any, override: Any, path: tuple[str, ...]) -> dict[str, Any]:
    default = {"condition": "service_started", "required": True}
    return _merge_mappings(_as_mapping(base, default), _as_mapping(override, default), path)


def _networks(base: Any, override: Any, path: tuple[str, ...]) -> dict[str, Any]:
    return _merge_mappings(_as_mapping(base), _as_mapping(override), path)


def _logging(base: dict[str, Any], override: dict[str, Any], path: tuple[str, ...]) -> Any:
    # Merged only when both name the same driver, or either names none; else replaced.
    if "driver" in base and "driver" in override and base["driver"] != override["driver"]:
        return override
    return _merge_mappings(base, override, path)


_SERVICE_MERGERS: dict[str, _Merger] = {
    "command": _replace,
    "entrypoint": _replace,
    "environment": _key_values,
    "labels": _key_values,
    "annotations": _key_values,
    "sysctls": _key_values,
    "depends_on": _depends_on,
    "networks": _networks,
    "logging": _logging,
}


def _volume_target(entry: Any) -> str:
    """A volume's container path: long syntax `target`, else the short syntax's second field
    (or its only one)."""
    if isinstance(entry, dict):
        return str(entry["target"])
    fields = str(entry).split(":")
    return fields[1] if len(fields) > 1 else fields[0]


def _mount_target(default_dir: str) -> Callable[[Any], str]:
    """A secret's or config's container path: `target`, else its name under `default_dir`."""

    def target(entry: Any) -> str:
        if isinstance(entry, dict):
            return str(entry.get("target") or f"{default_dir}/{entry['source']}")
        return f"{default_dir}/{entry}"

    return target


_UNIQUE_BY: dict[str, Callable[[Any], str]] = {
    "volumes": _volume_target,
    "secrets": _mount_target("/run/secrets"),
    "configs": _mount_target(""),
    "ports": lambda entry: repr(sorted(entry.items())) if isinstance(entry, dict) else str(entry),
    "profiles": str,
    "cap_add": str,
    "extra_hosts": str,
}


def _unique(entries: list[Any], path: tuple[str, ...]) -> list[Any]:
    key_of = _UNIQUE_BY.get(path[2]) if len(path) == 3 and path[0] == "services" else None
    if key_of is None:
        return entries
    unique: dict[str, Any] = {}
    for entry in entries:
        # A redefinition takes the place of the first entry with its key (uncity.go).
        unique[key_of(entry)] = entry
    return list(unique.values())


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
