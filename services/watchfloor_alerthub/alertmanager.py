"""The hub's calls to Alertmanager's API v2: its alerts (to reconcile), silences (to acknowledge).

Several Alertmanagers (an HA cluster) may be given: alerts are read from all of them and merged
by fingerprint; a silence is created on the first that takes it (the cluster gossips it to the
others). Every call carries the basic-auth credentials when they are configured, and every
response is read with a size bound.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from watchfloor_alerthub.limits import (
    ALERTMANAGER_TIMEOUT_SECONDS,
    MAX_ALERTMANAGER_RESPONSE_BYTES,
)

_CREATORS_KEPT = 1024  # silence id -> createdBy, looked up once
_CREATOR_LOOKUPS = 20  # per reconciliation; the rest show as "Alertmanager" until the next
_SILENCE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # a UUID; anything else would change the path


class AlertmanagerError(Exception):
    pass


class SilenceRefused(AlertmanagerError):
    """Alertmanager answered, and will not take this silence (not a failure to retry)."""


class _Ignoring(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _AlertStatus(_Ignoring):
    silencedBy: list[str] = Field(default_factory=list)


class _Alert(_Ignoring):
    fingerprint: str
    status: _AlertStatus


class _Status(_Ignoring):
    uptime: datetime


class _SilenceStatus(_Ignoring):
    state: str


class _Silence(_Ignoring):
    id: str
    createdBy: str = ""
    status: _SilenceStatus


class _Created(_Ignoring):
    silenceID: str


# Only the fields the hub reads are built into objects; the rest of each alert is skipped.
_ALERTS = TypeAdapter(list[_Alert])


@dataclass(frozen=True)
class Firing:
    """What Alertmanager holds: fingerprint -> ids of the silences muting it; and who created
    those silences."""

    alerts: dict[str, list[str]]
    creators: dict[str, str]


class Alertmanagers:
    def __init__(self, urls: Sequence[str], credentials: tuple[str, str] | None) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self._client = httpx.AsyncClient(
            auth=httpx.BasicAuth(*credentials) if credentials else None,
            timeout=ALERTMANAGER_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            trust_env=False,  # Alertmanager is a neighbour, never behind the environment's proxy
        )
        self._creators: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def firing(self, warmup_seconds: float) -> Firing:
        """The alerts of every Alertmanager that answers; raises when none that has been up for
        `warmup_seconds` does (a younger one has not heard from Prometheus again yet)."""
        answers = await asyncio.gather(
            *(self._alerts_of(url, warmup_seconds) for url in self.urls), return_exceptions=True
        )
        merged: dict[str, list[str]] = {}
        warm, errors = False, []
        for answer in answers:
            if isinstance(answer, BaseException):
                errors.append(str(answer))
                continue
            alerts, answered_warm = answer
            warm = warm or answered_warm
            for alert in alerts:
                silences = merged.setdefault(alert.fingerprint, [])
                silences.extend(s for s in alert.status.silencedBy if s not in silences)
        if not warm:
            reason = "; ".join(errors) or f"up for less than {warmup_seconds:g} s"
            raise AlertmanagerError(f"no Alertmanager to reconcile with: {reason}")
        await self._learn_creators({s for silences in merged.values() for s in silences})
        return Firing(merged, dict(self._creators))

    async def create_silence(self, silence: dict[str, Any]) -> str:
        """The new silence's id; tries each Alertmanager in turn while they fail to answer."""
        failures = []
        for url in self.urls:
            try:
                status, body = await self._call("POST", url, "/api/v2/silences", json=silence)
            except AlertmanagerError as exc:
                failures.append(str(exc))
                continue
            if status >= 500:
                failures.append(f"{url} answered {status}: {_excerpt(body)}")
                continue
            if status in {401, 403}:
                raise AlertmanagerError(
                    f"Alertmanager at {url} answered {status}: {_excerpt(body)}{_auth_hint(status)}"
                )
            if status != 200:
                raise SilenceRefused(
                    f"Alertmanager at {url} refused the silence ({status}): {_excerpt(body)}"
                )
            try:
                return _Created.model_validate_json(body).silenceID
            except ValidationError:
                failures.append(f"{url} answered without a silence id: {_excerpt(body)}")
        raise AlertmanagerError("; ".join(failures))

    async def silence_in_force(self, silence_id: str) -> bool:
        """Whether the silence is active or pending, by the first Alertmanager that knows it."""
        silence = await self._silence(silence_id)
        return silence is not None and silence.status.state in {"active", "pending"}

    async def _alerts_of(self, url: str, warmup_seconds: float) -> tuple[list[_Alert], bool]:
        status = _Status.model_validate_json(await self._get(url, "/api/v2/status"))
        up_for = (datetime.now(UTC) - status.uptime).total_seconds()
        body = await self._get(
            url,
            "/api/v2/alerts",
            {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"},
        )
        return _ALERTS.validate_json(body), up_for >= warmup_seconds

    async def _learn_creators(self, silence_ids: set[str]) -> None:
        unknown = [s for s in silence_ids if s not in self._creators][:_CREATOR_LOOKUPS]
        if len(self._creators) + len(unknown) > _CREATORS_KEPT:
            self._creators.clear()
        for silence_id in unknown:
            silence = await self._silence(silence_id)
            if silence is not None:
                self._creators[silence_id] = silence.createdBy

    async def _silence(self, silence_id: str) -> _Silence | None:
        if not _SILENCE_ID.fullmatch(silence_id):
            return None
        for url in self.urls:
            try:
                return _Silence.model_validate_json(
                    await self._get(url, f"/api/v2/silence/{silence_id}")
                )
            except (AlertmanagerError, ValidationError):
                continue
        return None

    async def _get(self, url: str, path: str, params: dict[str, str] | None = None) -> bytes:
        status, body = await self._call("GET", url, path, params=params)
        if status != 200:
            raise AlertmanagerError(
                f"{url}{path} answered {status}: {_excerpt(body)}{_auth_hint(status)}"
            )
        return body

    async def _call(
        self,
        method: str,
        url: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> tuple[int, bytes]:
        try:
            async with self._client.stream(
                method, url + path, params=params, json=json
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ALERTMANAGER_RESPONSE_BYTES:
                        raise AlertmanagerError(
                            f"{url}{path} answered over {MAX_ALERTMANAGER_RESPONSE_BYTES} bytes"
                        )
                return response.status_code, bytes(body)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise AlertmanagerError(f"Alertmanager at {url} is unreachable: {reason}") from None


def _excerpt(body: bytes) -> str:
    return body[:300].decode(errors="replace")


def _auth_hint(status: int) -> str:
    if status in {401, 403}:
        return " (check WATCHFLOOR_ALERTMANAGER_USERNAME and WATCHFLOOR_ALERTMANAGER_PASSWORD)"
    return ""
