"""The endpoint runtime's keep-alive client to its instances, against a real loopback server
that answers with a length, in chunks, or by closing, and can stall or vanish."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from mlpilot.serving._wire import ConnectionPool

Answer = Callable[[bytes], Awaitable[bytes | None]]


async def serve(answer: Answer) -> tuple[asyncio.Server, str, list[int]]:
    """A server calling ``answer(request body)`` for each request: the bytes to send back, or
    None to close. Returns the server, its base URL and a list counting connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                reply = await answer(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_length_and_chunked_answers_reuse_one_connection() -> None:
    async def answer(body: bytes) -> bytes:
        if body == b"chunked":
            return (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/csv\r\n\r\n"
                b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
            )
        text = b"echo:" + body
        return b"HTTP/1.1 400 Bad\r\ncontent-length: %d\r\n\r\n%s" % (len(text), text)

    async def test() -> None:
        server, url, connections = await serve(answer)
        pool = ConnectionPool(connect_timeout=2, timeout=5)
        first = await pool.post(url, "/invocations", b"1,2", {"Content-Type": "text/csv"})
        second = await pool.post(url, "/invocations", b"chunked", {})
        assert (first.status_code, first.content) == (400, b"echo:1,2")
        assert (second.status_code, second.content) == (200, b"abcde")
        assert second.headers["content-type"] == "text/csv"
        assert len(connections) == 1
        pool.close()
        server.close()

    run(test)


def test_a_connection_the_server_closed_is_replaced() -> None:
    async def answer(body: bytes) -> bytes:
        # Connection: close after each answer, as a server ending keep-alive does.
        return b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async def test() -> None:
        server, url, connections = await serve(answer)
        pool = ConnectionPool(connect_timeout=2, timeout=5)
        for _ in range(3):
            assert (await pool.post(url, "/invocations", b"x", {})).content == b"ok"
        assert len(connections) == 3
        server.close()

    run(test)


def test_failures_come_as_the_httpx_errors_the_runtime_sorts() -> None:
    async def answer(body: bytes) -> bytes | None:
        if body == b"stall":
            await asyncio.sleep(1)
        return None  # close without answering

    async def test() -> None:
        server, url, _ = await serve(answer)
        pool = ConnectionPool(connect_timeout=2, timeout=0.3)
        with pytest.raises(httpx.ReadTimeout):
            await pool.post(url, "/invocations", b"stall", {})
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.post(url, "/invocations", b"vanish", {})
        server.close()
        await server.wait_closed()
        with pytest.raises(httpx.ConnectError):
            await pool.post(url, "/invocations", b"x", {})
        with pytest.raises(httpx.ConnectError):
            await pool.post("", "/invocations", b"x", {})

    run(test)
