"""The correlation id follows threads' and tasks' contexts and restores on exit."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from watchfloor.correlation import (
    HEADER,
    correlation_scope,
    get_correlation_id,
    new_correlation_id,
)


def test_scope_sets_and_restores():
    assert get_correlation_id() is None
    with correlation_scope("outer") as outer:
        assert outer == "outer" == get_correlation_id()
        with correlation_scope("inner"):
            assert get_correlation_id() == "inner"
        assert get_correlation_id() == "outer"
    assert get_correlation_id() is None


def test_scope_generates_an_id_when_none_given():
    with correlation_scope() as generated:
        assert len(generated) == 32 and get_correlation_id() == generated
    assert new_correlation_id() != new_correlation_id()
    assert HEADER == "X-Correlation-ID"


def test_restored_after_exception():
    try:
        with correlation_scope("x"):
            raise RuntimeError
    except RuntimeError:
        pass
    assert get_correlation_id() is None


async def test_flows_through_async_tasks_independently():
    async def handle(order: str) -> tuple[str, str | None, str | None]:
        async with correlation_scope(f"corr-{order}"):
            await asyncio.sleep(0.01)
            child = await asyncio.create_task(read_later())
            return order, get_correlation_id(), child

    async def read_later() -> str | None:
        await asyncio.sleep(0.005)
        return get_correlation_id()

    results = await asyncio.gather(*(handle(str(n)) for n in range(20)))
    for order, seen, child in results:
        assert seen == child == f"corr-{order}"
    assert get_correlation_id() is None


def test_threads_get_it_through_copied_context():
    seen: list[str | None] = []
    with correlation_scope("threaded"):
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(lambda: seen.append(get_correlation_id()),)
        )
        plain = threading.Thread(target=lambda: seen.append(get_correlation_id()))
        thread.start()
        plain.start()
        thread.join()
        plain.join()
    assert sorted(seen, key=str) == [None, "threaded"]
