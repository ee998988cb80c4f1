"""`mailer serve`: the unsubscribe app on waitress, sized for the bursts that follow a send.

After an issue goes to a big list, Gmail and Yahoo deliver their one-click
POSTs in bursts, and a one-click unsubscribe that is lost breaks their
sender rules. The standard library's server listened with a backlog of 5,
so a burst of 50 clients had a tenth of its connections reset, unrecorded.
waitress accepts into a deep backlog, reads each request whole in one
event loop before a thread sees it (a slow or silent client holds no
thread, only a socket until `channel_timeout`), writes answers from a
buffer, and keeps connections alive.

What reaches the operator's terminal is one line per request with the
token cut out of the URL (whoever reads a log must not be able to
unsubscribe a reader with it), and waitress's own messages pass through the
same redaction.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .server import QuietServer
from .unsubscribe import MAX_BODY, UnsubscribeApp

# The request line and headers of a one-click POST are a few hundred bytes;
# 16 KiB leaves room for any real client and none for a header flood.
MAX_HEADERS = 16 * 1024


@dataclass(frozen=True)
class ServeOptions:
    """How `mailer serve` meets a burst; the defaults hold 50 clients at once on 2 cores."""

    threads: int = 8
    """Requests handled at once. Store writes take turns anyway, and 16 threads were
    no faster than 8 on 2 cores (bench/serve_bench.py); fewer queue GETs behind POSTs."""
    backlog: int = 1024
    """Connections the kernel holds while every thread is busy (capped by
    net.core.somaxconn); a burst beyond it is refused, not reset midway."""
    connection_limit: int = 512
    """Open connections at most (keep-alive ones included); more wait in the backlog."""
    channel_timeout: int = 30
    """Seconds a connection may stay silent, mid-request or idle between requests."""


def redact(line: str) -> str:
    """`line` with every unsubscribe token (``t=…`` in a query string) cut out."""
    return re.sub(r"([?&]t=)[^&\s\"']*", r"\1…", line)


class _RedactTokens(logging.Filter):
    """Cuts tokens out of waitress's own log records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def _quiet_waitress() -> None:
    """Redact waitress's loggers, and keep the queue's depth warnings for real trouble:
    a burst queued behind the threads is how the server is meant to work."""
    for name in ("waitress", "waitress.queue"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in logger.filters):
            logger.addFilter(_RedactTokens())
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class _AccessLog:
    """WSGI middleware writing one line per answered request, token cut out."""

    def __init__(self, app: Callable, write: Callable[[str], object]) -> None:
        self.app = app
        self.write = write

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        seen: dict[str, str] = {}

        def recording_start(status: str, headers: list, *rest) -> Callable:
            seen["status"] = status.split(" ", 1)[0]
            seen["length"] = next((v for k, v in headers if k.lower() == "content-length"), "-")
            return start_response(status, headers, *rest)

        body = self.app(environ, recording_start)
        query = environ.get("QUERY_STRING", "")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        stamp = time.strftime("%d/%b/%Y %H:%M:%S")
        self.write(redact(f'{environ.get("REMOTE_ADDR", "-")} - [{stamp}] "{environ.get("REQUEST_METHOD")} '
                          f'{target} {environ.get("SERVER_PROTOCOL")}" {seen.get("status", "-")} '
                          f'{seen.get("length", "-")}\n'))
        return body


def _stderr(line: str) -> None:
    sys.stderr.write(line)
    sys.stderr.flush()


class UnsubscribeServer:
    """A bound waitress server for the app: `serve_forever` in one thread,
    `shutdown` from another, then `server_close`."""

    def __init__(self, app: UnsubscribeApp, host: str, port: int, options: ServeOptions) -> None:
        # Imported here: every mailer command loads this module for `serve`'s options.
        from waitress import wasyncore
        from waitress.server import create_server

        _quiet_waitress()
        self._loop = wasyncore.loop
        self._map: dict = {}
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        try:
            self._server = create_server(
                _AccessLog(app, _stderr), map=self._map, host=host, port=port,
                threads=options.threads, backlog=options.backlog,
                connection_limit=options.connection_limit, channel_timeout=options.channel_timeout,
                # waitress refuses a body over MAX_BODY before buffering it; the app refuses
                # the same under any other server.
                max_request_body_size=MAX_BODY, max_request_header_size=MAX_HEADERS,
                ident="mailer", expose_tracebacks=False,
            )
        except OSError as exc:
            refusal = QuietServer.refusal(exc, host, port)
            if refusal is None:
                raise
            raise refusal from None

    @property
    def server_address(self) -> tuple[str, int]:
        """The host and port listened on (the port the system chose when 0 was asked)."""
        server = self._server
        if hasattr(server, "effective_port"):
            return server.effective_host, server.effective_port
        host, port = server.effective_listen[0][:2]
        return host, port

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Answer requests until `shutdown`; `poll_interval` is how soon it notices."""
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                self._loop(timeout=poll_interval, map=self._map, use_poll=True, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (from another thread) and wait until it has."""
        self._stop.set()
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket and every connection, and end the threads."""
        self._server.close()


def make_server(app: UnsubscribeApp, host: str = "127.0.0.1", port: int = 8080,
                options: ServeOptions = ServeOptions()) -> UnsubscribeServer:
    """A waitress server for `app`, bound but not yet serving; a port that cannot be
    bound is `PortInUse`."""
    return UnsubscribeServer(app, host, port, options)
