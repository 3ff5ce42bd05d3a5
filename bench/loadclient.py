"""A lean HTTP/1.1 keep-alive client for load benches: one connection per simulated client.

Why not httpx: on this 2-core machine httpx's async client spent 1.4-3.2 ms of CPU per request
(``bench/bench_api_load.py``, 50 clients), more than the server it measured (1.1-1.7 ms), so the
load generator took the cores the server needed and its own queueing showed up as server
latency. This client writes the request line and reads the status, the headers and a
``Content-Length`` or chunked body straight from an asyncio stream: a few tens of microseconds
per request, so the figures are the server's.

It speaks only what the benches need (GET, identity or chunked bodies, ``Connection: close``)
and talks to one host; any protocol error closes the connection and the next request reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 this client understands."""


class Connection:
    """One keep-alive connection to ``host:port`` that reconnects after an error or a close."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        """``(status, body)``; raises OSError, ProtocolError or TimeoutError (then reconnects)."""
        target = path + ("?" + urlencode(params) if params else "")
        try:
            return await asyncio.wait_for(self._exchange(target), self.timeout)
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, target: str) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        request = f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
        self._writer.write(request.encode("latin-1"))
        status, headers = await self._head(self._reader)
        body = await self._body(self._reader, status, headers)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    @staticmethod
    async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    @staticmethod
    async def _body(reader: asyncio.StreamReader, status: int, headers: dict[str, str]) -> bytes:
        if status in (204, 304) or 100 <= status < 200:
            return b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk[:-2])
        if "content-length" not in headers:
            raise ProtocolError("neither Content-Length nor chunked")
        return await reader.readexactly(int(headers["content-length"]))

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
