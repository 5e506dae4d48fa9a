"""HubError: an HTTP error with a message a person can act on and the fields it concerns."""

from __future__ import annotations


class HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.errors, self.headers = errors or [], headers or {}
