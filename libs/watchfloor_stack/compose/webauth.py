"""Basic auth in front of Prometheus, Alertmanager and Pushgateway (their --web.config.file).

Their APIs change state (reload, quit, silences, pushed metrics) and answer cross-origin requests,
so any web page an operator opens could call them; with basic auth a browser sends nothing
it was not given. Each component has one user, `watchfloor`, whose password is a secret in .env
(or local mode's secrets.env); the web config holds its bcrypt hash, which is what Prometheus'
exporter-toolkit checks (and caches per password, so the cost is paid once per client).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchfloor_stack.compose.dotenv import parse, write_private

USERNAME = "watchfloor"
# Component -> the secret that is its password.
PASSWORDS = {
    "prometheus": "PROMETHEUS_PASSWORD",
    "alertmanager": "ALERTMANAGER_PASSWORD",
    "pushgateway": "PUSHGATEWAY_PASSWORD",
}
# .env.example's placeholder for a value `make up` computes from another.
DERIVED = "<derived>"
# exporter-toolkit accepts any bcrypt cost; 10 is bcrypt's customary minimum.
BCRYPT_ROUNDS = 10


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError as exc:  # the library proper does not need it; the stack's tooling does
        raise RuntimeError(
            "hashing the web passwords needs bcrypt: pip install 'watchfloor[stack]'"
        ) from exc
    return bcrypt


def password_hash(password: str, previous: str | None = None) -> str:
    """A bcrypt hash of `password`; `previous` is kept when it still matches, so files that
    hold the hash change only when the password does."""
    bcrypt = _bcrypt()
    secret = password.encode()
    if previous and previous.startswith("$2") and bcrypt.checkpw(secret, previous.encode()):
        return previous
    return str(bcrypt.hashpw(secret, bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode())


def web_config(hashed: str) -> str:
    """The --web.config.file body: one user. The hash is quoted: it is full of `$`."""
    return f'basic_auth_users:\n  {USERNAME}: "{hashed}"\n'


def previous_hash(path: Path) -> str | None:
    """The hash a web config written by web_config holds, if the file exists."""
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        name, _, value = line.strip().partition(":")
        if name == USERNAME:
            return value.strip().strip('"') or None
    return None


def hash_variable(secret: str) -> str:
    return f"{secret}_BCRYPT"


def ensure_hashes(env_file: Path) -> list[str]:
    """Set each PASSWORD's `_BCRYPT` line in .env to its hash, single-quoted so that Compose
    takes the `$`s literally; returns the variables changed. A hash that still matches stays."""
    lines = env_file.read_text().splitlines()
    values = parse("\n".join(lines))
    wanted = {
        hash_variable(secret): password_hash(values[secret], values.get(hash_variable(secret)))
        for secret in PASSWORDS.values()
        if values.get(secret)
    }
    changed = []
    for index, line in enumerate(lines):
        name = line.partition("=")[0].strip()
        if name in wanted and not line.lstrip().startswith("#"):
            if values.get(name) != wanted[name]:
                changed.append(name)
            lines[index] = f"{name}='{wanted.pop(name)}'"
    lines += [f"{name}='{value}'" for name, value in wanted.items()]
    changed += list(wanted)
    if changed:
        write_private(env_file, "\n".join(lines) + "\n")
    return sorted(changed)
