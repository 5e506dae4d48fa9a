"""The merge in watchfloor_stack.compose.compose_file against compose-go's rules
(override/merge.go, uncity.go): the cases the Compose files use, each as compose-go's own tests
state it."""

from __future__ import annotations

from typing import Any

from watchfloor_stack.compose.compose_file import merge_all


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = merge_all([{"services": {"x": base}}, {"services": {"x": override}}])[
        "services"
    ]["x"]
    return service


def test_scalars_are_replaced_mappings_merged_and_sequences_appended() -> None:
    merged = _merged(
        {
            "image": "a:1",
            "healthcheck": {"test": ["CMD", "a"], "interval": "1s"},
            "dns": ["1.1.1.1"],
        },
        {"image": "a:2", "healthcheck": {"test": ["CMD", "b"]}, "dns": ["8.8.8.8"]},
    )
    assert merged["image"] == "a:2"
    assert merged["healthcheck"] == {"test": ["CMD", "b"], "interval": "1s"}  # test replaced
    assert merged["dns"] == ["1.1.1.1", "8.8.8.8"]


def test_command_is_replaced_not_appended() -> None:
    assert _merged({"command": ["echo", "foo"]}, {"command": ["echo", "bar"]})["command"] == [
        "echo",
        "bar",
    ]


def test_environment_keeps_one_value_per_key_in_either_syntax() -> None:
    merged = _merged({"environment": {"A": "1", "B": "2"}}, {"environment": ["B=3", "C"]})
    assert merged["environment"] == {"A": "1", "B": "3", "C": None}


def test_mounts_are_unique_by_container_path() -> None:
    merged = _merged(
        {"volumes": ["foo:/work", "/anonymous"], "secrets": ["s"], "configs": ["c"]},
        {
            "volumes": ["bar:/work"],
            "secrets": [{"source": "s", "target": "/run/secrets/s", "mode": 0o400}],
            "configs": [{"source": "c", "target": "/other"}],
        },
    )
    assert merged["volumes"] == ["bar:/work", "/anonymous"]
    assert merged["secrets"] == [{"source": "s", "target": "/run/secrets/s", "mode": 0o400}]
    assert merged["configs"] == ["c", {"source": "c", "target": "/other"}]


def test_depends_on_and_networks_merge_as_mappings() -> None:
    merged = _merged(
        {"depends_on": ["db"], "networks": ["front"]},
        {
            "depends_on": {"db": {"condition": "service_healthy"}, "cache": {"condition": "x"}},
            "networks": {"front": {"aliases": ["web"]}},
        },
    )
    assert merged["depends_on"] == {
        "db": {"condition": "service_healthy", "required": True},
        "cache": {"condition": "x"},
    }
    assert merged["networks"] == {"front": {"aliases": ["web"]}}


def test_logging_options_merge_only_for_the_same_driver() -> None:
    base = {"logging": {"driver": "json-file", "options": {"max-size": "10m"}}}
    assert _merged(base, {"logging": {"options": {"max-file": "3"}}})["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3"},
    }
    assert _merged(base, {"logging": {"driver": "syslog"}})["logging"] == {"driver": "syslog"}
