"""The preview's base server of the standard library, and the words of a refused port.

The preview is a threaded HTTP server that browsers drop connections to at
any moment — a closed tab, a reload — and a dropped connection is not an
error worth a traceback on the writer's terminal. It and `mailer serve`
(on waitress, `unsubscribe_server`) are started by a command with
``--port``, so a port that cannot be bound ends in a `PortInUse` the
command line prints in one line; `refusal` words it for `serve`'s options
and the preview words its own.
"""

from __future__ import annotations

import socketserver
import sys
from http.server import HTTPServer
from typing import Any

from ..errors import PortInUse


class QuietServer(socketserver.ThreadingMixIn, HTTPServer):
    """A thread per request; client disconnects are silent; a refused bind is `PortInUse`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        try:
            super().__init__(address, handler)
        except OSError as exc:
            refusal = self.refusal(exc, address[0], address[1])
            if refusal is None:
                raise
            raise refusal from None

    @staticmethod
    def refusal(exc: OSError, host: str, port: int) -> PortInUse | None:
        """The error a user gets when `host`:`port` cannot be bound; None re-raises `exc`."""
        return PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint="pick another --port or --host")

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)
