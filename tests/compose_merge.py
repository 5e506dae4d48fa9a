"""Compose files merged the way `docker compose -f a.yml -f b.yml` merges them.

The rules are compose-go's (override/merge.go and override/uncity.go, which docker compose
uses): mappings merge key by key and the later file wins a scalar; sequences are appended;
`command`, `entrypoint` and `healthcheck.test` are replaced; `environment` and the other
KEY=VALUE lists keep one entry per key (the later one); `depends_on` and `networks` merge as
mappings; `volumes`, `configs` and `secrets` keep one entry per container path, `ports` one per
mapping. Each file is interpolated on its own before the merge, as compose-go does. The e2e
suite compares the result with `docker compose config` on a Docker host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from watchfloor_stack.compose.compose_file import load

REPO = Path(__file__).resolve().parents[1]
BASE_FILE = REPO / "docker-compose.monitoring.yml"
SCALE_FILE = REPO / "docker-compose.scale.yml"
# The stacks `make up` and `make up-scale` start: the files, in the order Compose gets them.
PROFILES: dict[str, tuple[Path, ...]] = {"base": (BASE_FILE,), "scale": (BASE_FILE, SCALE_FILE)}

_Merger = Callable[[Any, Any, tuple[str, ...]], Any]


def load_profile(
    files: Sequence[Path], env: Mapping[str, str], required: bool = True
) -> dict[str, Any]:
    """The files interpolated with `env`, then merged."""
    return merge_all([load(path, env, required) for path in files])


def raw_profile(files: Sequence[Path]) -> dict[str, Any]:
    """The files merged as written (variables not interpolated)."""
    return merge_all([yaml.safe_load(path.read_text()) for path in files])


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
    """A volume's container path: long syntax `target`, short syntax's second field (or only one)."""
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
