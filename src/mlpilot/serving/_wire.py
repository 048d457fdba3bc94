"""The endpoint runtime's keep-alive client to its own ``serve-model`` instances on loopback,
for one event loop: aiohttp's client (its HTTP parser is compiled), with connections kept
alive per instance.

httpx's client (connection-pool bookkeeping, anyio streams, the pure-Python h11 parser) took
about half of the service's CPU per forwarded row under load. Failures are raised as the httpx
exception classes the runtime already sorts (connect, timeout, a connection closed under it),
so its retry rules do not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

__all__ = ["ConnectionPool", "WireResponse"]


@dataclass
class WireResponse:
    status_code: int
    content: bytes
    #: Header names in lower case.
    headers: dict[str, str] = field(default_factory=dict)


class ConnectionPool:
    """Kept-alive connections to the instances, for the event loop it is first used on."""

    def __init__(self, *, connect_timeout: float, timeout: float, keep: int = 64) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.keep = keep
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # No pool limit: the runtime bounds what is in flight; ``keep`` idle ones stay.
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=self.keep),
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, sock_connect=self.connect_timeout
                ),
                auto_decompress=False,
                # The instance answers what it was asked; nothing of aiohttp's own is needed.
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def post(
        self, base_url: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> WireResponse:
        """POST ``body`` to ``base_url + path``; the answer whatever its status."""
        if not base_url.startswith("http://"):
            raise httpx.ConnectError(f"not an http://host:port address: {base_url!r}")
        try:
            async with self._client().post(
                base_url + path, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                content = await response.read()
                return WireResponse(
                    response.status,
                    content,
                    {name.lower(): value for name, value in response.headers.items()},
                )
        except aiohttp.ConnectionTimeoutError:
            raise httpx.ConnectTimeout(f"cannot connect to {base_url} in time") from None
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from {base_url} in {self.timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"cannot connect to {base_url}: {exc.os_error}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.RemoteProtocolError(f"{base_url}: {type(exc).__name__}") from None

    def close(self) -> None:
        """Close the connections (called on the pool's loop)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            _keep(session.close())


def _keep(awaitable: Any) -> None:
    """Schedule ``awaitable`` on the running loop (closing needs no waiting for)."""
    task = asyncio.ensure_future(awaitable)
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


_PENDING: set[Any] = set()
