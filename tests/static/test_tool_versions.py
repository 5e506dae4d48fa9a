"""One source of truth for versions: what `make tools` builds is what Compose runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.static.conftest import REPO
from watchfloor_stack import gotools

TOOLS = gotools.load()


def _image_tags(raw_compose: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for service in raw_compose["services"].values():
        image = service.get("image", "")
        if ":" in image:
            repository, tag = image.rsplit(":", 1)
            tags[repository] = tag
    return tags


def _go_mod_requirements(folder: Path) -> dict[str, str]:
    return dict(re.findall(r"^\s*(\S+) (v\S+)", (folder / "go.mod").read_text(), re.MULTILINE))


@pytest.mark.parametrize(
    "tool", [tool for tool in TOOLS.values() if tool.image], ids=lambda tool: tool.name
)
def test_compose_pins_the_release_make_tools_builds(tool: gotools.Tool, raw_compose):
    assert tool.image
    tags = _image_tags(raw_compose)
    assert tool.image in tags, f"no Compose service runs {tool.image}"
    assert tags[tool.image].removeprefix("v") == tool.release, (
        f"Compose runs {tool.image}:{tags[tool.image]} but make tools builds {tool.release}"
    )


def test_compose_runs_the_victoriametrics_release_make_tools_builds():
    """make tools builds the single-node server (the proxy serves no -cluster module version);
    every victoriametrics/* image of any Compose file, cluster ones too, is that release."""
    release = TOOLS["victoriametrics"].release
    for compose_file in sorted(REPO.glob("docker-compose*.yml")):
        services = (yaml.safe_load(compose_file.read_text()) or {}).get("services") or {}
        for name, service in services.items():
            image = str((service or {}).get("image", ""))
            if image.startswith("victoriametrics/"):
                tag = image.rsplit(":", 1)[-1].removeprefix("v").removesuffix("-cluster")
                assert tag == release, (
                    f"{compose_file.name} service {name} runs {image}; make tools builds {release}"
                )


@pytest.mark.parametrize("tool", TOOLS.values(), ids=lambda tool: tool.name)
def test_the_tools_module_builds_exactly_the_manifest_commands(tool: gotools.Tool):
    go_mod = (tool.folder / "go.mod").read_text()
    assert tool.module in _go_mod_requirements(tool.folder), (
        f"{tool.folder}/go.mod lacks {tool.module}"
    )
    declared = set(re.findall(r"^\s*(?:tool\s+)?(github\.com/\S+)$", go_mod, re.MULTILINE))
    wanted = {
        tool.module if package == "." else f"{tool.module}/{package}"
        for package in tool.binaries.values()
    }
    assert declared == wanted, f"{tool.folder}/go.mod's tool lines differ from versions.toml"
    assert (tool.folder / "go.sum").stat().st_size > 0


def test_a_changed_go_mod_is_a_new_cache_folder(tmp_path: Path, monkeypatch):
    tool = TOOLS["alertmanager"]
    before = tool.install_dir()
    go_mod, go_sum = (tool.folder / "go.mod").read_text(), (tool.folder / "go.sum").read_bytes()
    monkeypatch.setattr(gotools, "TOOLS_DIR", tmp_path)
    (tmp_path / tool.name).mkdir()
    (tmp_path / tool.name / "go.sum").write_bytes(go_sum)
    (tmp_path / tool.name / "go.mod").write_text(go_mod)
    assert tool.install_dir() == before
    (tmp_path / tool.name / "go.mod").write_text(go_mod.replace("v0.28.1", "v0.28.0"))
    assert tool.install_dir() != before
    assert tool.install_dir().parent == before.parent
