"""Create or complete .env from .env.example, generating every `<generated>` secret.

A first `make up` copies .env.example with fresh random values; later runs add only the
variables .env lacks (new settings after an upgrade) and fill placeholders left in a .env copied
by hand, never touching a value already set, so the passwords stored in Elasticsearch's volume
keep matching.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

GENERATED = "<generated>"
# Kibana wants its encryption keys at least 32 characters long.
KEY_LENGTH = 64
PASSWORD_LENGTH = 32
# Alphanumeric only: the values go through shell, YAML, URLs and Compose interpolation untouched.
_ALPHABET = string.ascii_letters + string.digits


def generate(name: str) -> str:
    length = KEY_LENGTH if name.endswith("_KEY") else PASSWORD_LENGTH
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse(text: str) -> dict[str, str]:
    """NAME=value lines; comments and blank lines skipped, surrounding quotes removed."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        name, _, value = stripped.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def ensure_env(example: Path, target: Path) -> list[str]:
    """Write or complete `target`; return the names it set (values are never printed).

    Placeholders left in an existing file (a .env copied by hand) are filled too.
    """
    template = example.read_text()
    if not target.exists():
        write_private(target, _fill(template))
        return sorted(parse(template))
    text = target.read_text()
    placeholders = sorted(n for n, v in parse(text).items() if v == GENERATED)
    text = _fill(text)
    current = parse(text)
    missing = {
        name: generate(name) if value == GENERATED else value
        for name, value in parse(template).items()
        if name not in current
    }
    if missing:
        separator = "" if text.endswith("\n") or not text else "\n"
        addition = "".join(f"{name}={value}\n" for name, value in missing.items())
        text = f"{text}{separator}# Added by make up from .env.example\n{addition}"
    if missing or placeholders:
        write_private(target, text)
    target.chmod(0o600)
    return sorted([*placeholders, *missing])


def _fill(text: str) -> str:
    lines = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        generated = sep and not line.lstrip().startswith("#") and value.strip() == GENERATED
        lines.append(f"{name}={generate(name.strip())}" if generated else line)
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only from the moment it exists."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover would keep its old mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
