"""Protection of the HTTP front against clients that ask too much or too slowly.

- :class:`Throttle`: token buckets per client (the SigV4 access key id, or the peer address
  for unsigned requests) for all requests and for job creations. Over the rate, the answer is
  what AWS's JSON protocols send: HTTP 400 with ``__type`` ``ThrottlingException``, which
  botocore's retry modes recognise and back off from.
- :class:`BodyDeadline`: a request's whole body must arrive within a deadline; a client that
  trickles it gets 408 and the connection is closed. Bodies are read on the event loop, so a
  slow client never holds a worker thread while it dawdles.
- :func:`header_deadline_protocol`: the same for the request line and headers, which uvicorn
  reads before any middleware sees the request and on which it sets no deadline of its own
  (its keep-alive timeout only runs while a connection sits idle between requests).

The first two are plain ASGI middleware; the throttle is only installed when a rate is
configured. The third is the HTTP protocol class handed to uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyDeadline", "Throttle", "TokenBucket", "header_deadline_protocol"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_CREDENTIAL = re.compile(rb"Credential=([^/,\s]+)/")
_CREATIONS = (b"SageMaker.CreateAutoMLJob", b"SageMaker.CreateAutoMLJobV2")
#: Clients remembered before idle (full) buckets are forgotten.
_MAX_CLIENTS = 10_000


class TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity``; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


class _Buckets:
    """One bucket per client, all with the same rate (per second) and capacity."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> bool:
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= _MAX_CLIENTS:
                    self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
                bucket = self._buckets[client] = TokenBucket(self.rate, self.capacity, now)
            return bucket.take(now)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return b""


def client_of(scope: Scope) -> str:
    """Whom a request's rate counts against: its access key id, else its peer address."""
    found = _CREDENTIAL.search(_header(scope, b"authorization"))
    if found:
        return "key:" + found.group(1).decode("latin-1")
    peer = scope.get("client")
    return f"addr:{peer[0]}" if peer else "addr:?"


async def _error(send: Send, status: int, code: str, message: str, *, close: bool = False) -> None:
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
        # sagemaker-runtime (REST-JSON) clients read the code from this header.
        (b"x-amzn-errortype", code.encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Throttle:
    """Refuses requests over ``requests_per_second`` (all but ``GET /ping``) and
    CreateAutoMLJob[V2] calls over ``creations_per_minute``, per client. Each bucket holds
    one period's worth (at least one request), so short bursts pass."""

    def __init__(
        self,
        app: App,
        *,
        requests_per_second: float | None = None,
        creations_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.requests = (
            _Buckets(requests_per_second, max(1.0, requests_per_second), clock)
            if requests_per_second
            else None
        )
        self.creations = (
            _Buckets(creations_per_minute / 60.0, max(1.0, creations_per_minute), clock)
            if creations_per_minute
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/ping":
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        if self.requests is not None and not self.requests.take(client):
            await _error(send, 400, "ThrottlingException", "Rate exceeded")
            return
        if (
            self.creations is not None
            and _header(scope, b"x-amz-target") in _CREATIONS
            and not self.creations.take(client)
        ):
            await _error(send, 400, "ThrottlingException", "Rate exceeded for AutoML job creation")
            return
        await self.app(scope, receive, send)


class BodyDeadline:
    """Reads each request's body before the app sees it, allowing ``seconds`` for all of it;
    a client still sending after that gets 408 RequestTimeout and its connection closed."""

    def __init__(self, app: App, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # gone before it finished sending: nobody to answer
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await _error(
                send,
                408,
                "RequestTimeoutException",
                f"The request body did not arrive within {self.seconds:g} s",
                close=True,
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the disconnect is left to hear

        await self.app(scope, replay, send)


#: The largest request line and headers (h11's limit on an incomplete head, which the service
#: used before).
MAX_HEAD_BYTES = 16 * 1024


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (its compiled parser: h11, the pure-Python one, cost a
    few tenths of a millisecond per request), with ``seconds`` for each request's line and
    headers to arrive: counted from the connection's opening, then from the end of each
    response (keep-alive). A client still sending them then gets 408 and the connection is
    closed; one that sent nothing at all is just closed, as an idle keep-alive connection is.
    A head over :data:`MAX_HEAD_BYTES` gets 431 and the connection is closed."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    message = f"The request headers did not arrive within {seconds:g} s"
    body = json.dumps(
        {"__type": "RequestTimeoutException", "message": message, "Message": message}
    ).encode()
    answer = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/x-amz-json-1.1\r\n"
        b"x-amzn-errortype: RequestTimeoutException\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    too_large = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
        b"content-length: 0\r\n\r\n"
    )

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        #: Requests whose headers are in and whose response is not yet complete.
        _pending = 0
        #: Bytes received since the timer was armed while no request's headers were in.
        _head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._pending == 0:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._pending == 0 and self._head_bytes > MAX_HEAD_BYTES:
                # h11 bounded an incomplete head; httptools does not.
                self.transport.write(too_large)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._pending += 1
            self._head_bytes = 0
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            self._pending = max(0, self._pending - 1)
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if self._pending == 0:
                self._head_bytes = 0
            self._header_timer = self.loop.call_later(seconds, self._overdue)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _overdue(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self._pending:
                return  # the headers are in: the body has its own deadline (BodyDeadline)
            if self._head_bytes:
                self.transport.write(answer)
            self.transport.close()

    return HeaderDeadlineProtocol
