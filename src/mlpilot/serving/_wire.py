"""A lean HTTP/1.1 client for the endpoint runtime's hop to its own ``serve-model`` instances
on loopback: kept-alive connections over asyncio streams, one request at a time each.

httpx's general client (connection-pool bookkeeping, anyio streams, h11 events, response
models) took about half of the service's CPU per forwarded row; this one writes the request
in one piece and reads the head and a ``Content-Length`` (or chunked) body. Failures are
raised as the httpx exception classes the runtime already sorts (connect, timeout, a
connection closed under it), so its retry rules do not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

__all__ = ["ConnectionPool", "WireResponse"]

#: Largest response head accepted (status line and headers).
MAX_HEAD = 64 * 1024


@dataclass
class WireResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class ConnectionPool:
    """Idle keep-alive connections per ``http://host:port`` base URL, for one event loop."""

    def __init__(self, *, connect_timeout: float, timeout: float, keep: int = 64) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.keep = keep
        self._idle: dict[str, list[_Connection]] = {}
        self._closed = False

    async def post(
        self, base_url: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> WireResponse:
        """POST ``body`` to ``base_url + path``; the answer whatever its status."""
        connection = await self._take(base_url)
        reusable = False
        try:
            async with asyncio.timeout(self.timeout):
                response, reusable = await self._exchange(connection, base_url, path, body, headers)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from {base_url} in {self.timeout:g} s") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as exc:
            raise httpx.RemoteProtocolError(f"{base_url}: {type(exc).__name__}") from None
        finally:
            if reusable and not self._closed:
                idle = self._idle.setdefault(base_url, [])
                if len(idle) < self.keep:
                    idle.append(connection)
                else:
                    connection.close()
            else:
                connection.close()
        return response

    def close(self) -> None:
        """Close every idle connection (on the pool's loop)."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    async def _take(self, base_url: str) -> _Connection:
        idle = self._idle.get(base_url)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise httpx.ConnectError(f"not an http://host:port address: {base_url!r}")
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 80, limit=MAX_HEAD
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"cannot connect to {base_url} in time") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {base_url}: {exc}") from None
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(
        connection: _Connection,
        base_url: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[WireResponse, bool]:
        host = urlsplit(base_url).netloc
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        connection.writer.write(head + body)
        await connection.writer.drain()
        reader = connection.reader
        raw = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1 status line: {status_line[:80]!r}")
        status = int(rest.split(" ", 1)[0])
        answer: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        keep = answer.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "chunked" in answer.get("transfer-encoding", "").lower():
            content = await _read_chunked(reader)
        elif "content-length" in answer:
            content = await reader.readexactly(int(answer["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:  # delimited by the end of the connection
            content, keep = await reader.read(), False
        return WireResponse(status, content, answer), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
