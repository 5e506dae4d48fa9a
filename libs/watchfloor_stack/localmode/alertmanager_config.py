"""Render infrastructure/alertmanager/alertmanager.yml with secrets from the environment.

Alertmanager does not expand environment variables, and an integration with an empty Slack URL or
PagerDuty key fails config loading or every notification. So `${VAR}` placeholders are filled
from the environment and each integration (and the global SMTP settings) whose variables are unset
is left out: with nothing configured, every route still delivers to the alert hub.

    python -m watchfloor_stack.localmode.alertmanager_config [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from watchfloor_stack.assets import infrastructure

TEMPLATE = infrastructure() / "alertmanager" / "alertmanager.yml"
DEFAULTS = {"WATCHFLOOR_ALERTHUB_URL": "http://alert-hub:9095"}
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_INTEGRATIONS = ("webhook_configs", "slack_configs", "email_configs", "pagerduty_configs")


class MissingSettingError(ValueError):
    pass


def _variables(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_variables(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_variables(v) for v in value)) if value else set()
    return set()


def _fill(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, Mapping):
        return {k: _fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value


def render(template: str, environ: Mapping[str, str]) -> dict[str, Any]:
    env = {**DEFAULTS, **{k: v for k, v in environ.items() if v}}
    if "WATCHFLOOR_ALERTHUB_TOKEN" not in env:
        raise MissingSettingError(
            "WATCHFLOOR_ALERTHUB_TOKEN is not set: every route delivers to the alert hub, "
            "which requires it (make up / make local-up generate one into .env / .local)"
        )
    config: dict[str, Any] = yaml.safe_load(template)
    smtp_ready = {"WATCHFLOOR_SMTP_SMARTHOST", "WATCHFLOOR_SMTP_FROM"} <= env.keys()
    config["global"] = {
        key: value
        for key, value in config.get("global", {}).items()
        if _variables(value) <= env.keys() and (smtp_ready or not key.startswith("smtp_"))
    }
    for receiver in config["receivers"]:
        for kind in _INTEGRATIONS:
            kept = [
                entry
                for entry in receiver.get(kind, [])
                if _variables(entry) <= env.keys() and (kind != "email_configs" or smtp_ready)
            ]
            if kept:
                receiver[kind] = kept
            else:
                receiver.pop(kind, None)
    filled: dict[str, Any] = _fill(config, env)
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m watchfloor_stack.localmode.alertmanager_config"
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--output", type=Path, help="write here (default: standard output)")
    args = parser.parse_args(argv)
    try:
        config = render(args.template.read_text(), os.environ)
    except MissingSettingError as exc:
        print(f"alertmanager config: {exc}", file=sys.stderr)
        return 2
    text = "# Rendered from infrastructure/alertmanager/alertmanager.yml: edit that file.\n"
    text += yaml.safe_dump(config, sort_keys=False)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        args.output.chmod(0o600)  # it holds the receivers' secrets
    return 0


if __name__ == "__main__":
    sys.exit(main())
