"""Request bodies read with their bound checked as they stream in.

Starlette's `Request.body()` buffers the whole body first, so a 256 MiB chunked upload was in
memory before its size was known. Here a declared Content-Length over the limit is refused before
reading a byte, and a chunked body as soon as it passes the limit; unread data stays in the
socket (uvicorn stops reading a request nobody consumes).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import ClientDisconnect, Request

from watchfloor_alerthub.errors import HubError
from watchfloor_alerthub.limits import BODY_TIMEOUT_SECONDS


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HubError(413, f"body is over the {limit}-byte limit (Content-Length {declared})")
    body = bytearray()
    try:
        async with (
            asyncio.timeout(BODY_TIMEOUT_SECONDS),
            contextlib.aclosing(request.stream()) as chunks,
        ):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise HubError(413, f"body is over the {limit}-byte limit")
    except ClientDisconnect:
        raise HubError(400, "the client went away before the end of the body") from None
    except TimeoutError:
        raise HubError(408, f"the body did not arrive within {BODY_TIMEOUT_SECONDS:g} s") from None
    return bytes(body)
