"""The exporters' image, checked statically (images cannot be built where CI runs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "exporters" / "Dockerfile").read_text()


def test_pinned_slim_base_non_root_healthcheck():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    assert re.search(r"^USER 10001$", DOCKERFILE, re.MULTILINE)
    assert "HEALTHCHECK" in DOCKERFILE and "/ready" in DOCKERFILE
    assert DOCKERFILE.index("USER 10001") > DOCKERFILE.rindex("FROM ")


def test_copied_paths_exist_and_scripts_are_declared():
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    pyproject = (ROOT / "pyproject.toml").read_text()
    for script in ("watchfloor-trading-exporter", "watchfloor-pipeline-exporter"):
        assert f'{script} = "' in pyproject
    assert "watchfloor-trading-exporter" in DOCKERFILE
