"""Connection limits: uvicorn's options from the settings, and an HTTP protocol that closes
connections that are slow to send their headers.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and connections plus
requests in flight (``limit_concurrency``: a 503 past it), but it waits forever for the headers
of a request: a connection that sends nothing, or a header line every few seconds, stays open
and holds a file descriptor. :class:`GuardedHttpToolsProtocol` (uvicorn's httptools protocol,
the one ``takeoff serve`` uses) arms a timer when a connection opens and when a request begins;
headers not complete within ``header_timeout_s`` get a 408 and the connection is closed. It also
refuses (431) request lines and headers larger than ``max_header_bytes``, and keeps the open
connections at ``max_connections``: a new connection past it closes the one that has waited
longest for a request (idle or slow: never one with a request in flight), or, when every
connection has a request in flight, is itself refused (503).
"""

from __future__ import annotations

import asyncio
from typing import Any

from takeoff.serving.settings import ServeSettings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover (httptools is a dependency; uvicorn then speaks h11)
    HttpToolsProtocol = None

GUARD_ATTRIBUTE = "takeoff_guard"  # the limits ride on uvicorn's Config (which worker processes receive)


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` that carry the server's connection limits."""
    # uvicorn's own limit serves where its h11 protocol runs; the guarded protocol replaces it
    # (it evicts idle connections at the limit, and bounds requests in flight itself).
    options: dict[str, Any] = {"limit_concurrency": settings.max_connections, "timeout_keep_alive": settings.keep_alive_s,
                               "h11_max_incomplete_event_size": settings.max_header_bytes}
    if HttpToolsProtocol is not None:
        options["http"] = "takeoff.serving.connections:GuardedHttpToolsProtocol"  # a name: worker processes import it
    return options


def guard(config, settings: ServeSettings):
    """``config`` (a ``uvicorn.Config``) with the header limits the protocol reads."""
    setattr(config, GUARD_ATTRIBUTE, {"header_timeout_s": settings.header_timeout_s, "max_header_bytes": settings.max_header_bytes,
                                       "max_connections": settings.max_connections})
    return config


def _response(status: bytes, message: str) -> bytes:
    body = message.encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with a deadline for the headers and a bound on their size."""

        def __init__(self, config, server_state, app_state, _loop=None):
            super().__init__(config, server_state, app_state, _loop)
            limits = getattr(config, GUARD_ATTRIBUTE, None) or {}
            defaults = ServeSettings.model_fields
            self.header_timeout = limits.get("header_timeout_s", defaults["header_timeout_s"].default)
            self.max_header_bytes = limits.get("max_header_bytes", defaults["max_header_bytes"].default)
            self.max_connections = limits.get("max_connections", defaults["max_connections"].default)
            self.waiting_since = 0.0  # when it started to wait for a request (connected, or answered)
            # uvicorn's limit_concurrency also counts connections closed a moment ago but not yet
            # gone from its set (those this protocol evicted): requests in flight are bounded below.
            self.limit_concurrency = None
            self.header_timer: asyncio.TimerHandle | None = None
            self.awaiting_headers = True  # from connecting until a request's headers are complete
            self.header_bytes = 0  # of the request line and headers of the request being read
            self.received = False  # any byte on this connection
            self.refused = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.waiting_since = self.loop.time()
            self._arm()
            if len(self.connections) > self.max_connections:
                self._make_room()

        def _make_room(self) -> None:
            """At the connection limit, close the connection that has waited longest for a
            request (idle, or slow to send its headers), so that a flood of idle connections
            cannot lock out health checks; with every connection busy, refuse this one (503)."""
            idle = [c for c in self.connections if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c.idle()]
            if idle:
                victim = min(idle, key=lambda c: c.waiting_since)
                victim._disarm()
                victim.refused = True
                victim.transport.close()
            else:
                self._refuse(b"503 Service Unavailable",
                             f"the server holds {self.max_connections} connections with requests in flight (setting max_connections)")

        def idle(self) -> bool:
            """No request in flight: waiting for one, or for its headers."""
            return not self.refused and (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            self.received = True
            super().data_received(data)
            if self.awaiting_headers and self.header_bytes > self.max_header_bytes and not self.refused:
                self._refuse_large()  # still sending headers, already past the bound

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.header_bytes = 0
            if not self.awaiting_headers:  # the next request on a kept-alive connection
                self.awaiting_headers = True
                self._arm()

        def on_url(self, url: bytes) -> None:
            self.header_bytes += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.header_bytes += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.awaiting_headers = False
            self._disarm()
            if self.header_bytes > self.max_header_bytes:
                self._refuse_large()
                return
            if len(self.tasks) >= self.max_connections:
                self._refuse(b"503 Service Unavailable",
                             f"{len(self.tasks)} requests are in flight (setting max_connections); try again shortly")
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self.refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self.refused:
                super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()  # arms uvicorn's keep-alive timer
            self.awaiting_headers = False
            self.waiting_since = self.loop.time()

        def _arm(self) -> None:
            self._disarm()
            self.header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

        def _disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_timed_out(self) -> None:
            self.header_timer = None
            if not self.awaiting_headers or self.transport.is_closing():
                return
            if not self.received:  # a connection that never sent anything: closed without a word
                self._disarm()
                self.transport.close()
                return
            self._refuse(b"408 Request Timeout",
                         f"the request's headers did not arrive within {self.header_timeout:g}s (setting header_timeout_s)")

        def _refuse_large(self) -> None:
            self._refuse(b"431 Request Header Fields Too Large",
                         f"the request line and headers exceed {self.max_header_bytes} bytes (setting max_header_bytes)")

        def _refuse(self, status: bytes, message: str) -> None:
            self._disarm()
            self.awaiting_headers, self.refused = False, True
            self.transport.write(_response(status, message))
            self.transport.close()
