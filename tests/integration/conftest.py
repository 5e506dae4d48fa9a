"""Integration fixtures: real sockets, real processes, on loopback only."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from watchfloor.testing.beats import BeatsReceiver


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[BeatsReceiver]:
    with BeatsReceiver() as running:
        yield running
