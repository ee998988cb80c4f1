"""The unsubscribe server."""

from __future__ import annotations

import click

from ..web.unsubscribe_server import ServeOptions
from .options import current_workspace


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (put TLS in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--threads", type=click.IntRange(1, 256), default=ServeOptions.threads, show_default=True,
              help="Requests handled at once; the rest wait their turn, none is dropped.")
@click.option("--backlog", type=click.IntRange(16, 65535), default=ServeOptions.backlog, show_default=True,
              help="Connections held waiting while every thread is busy (a burst after a send).")
def serve(host: str, port: int, threads: int, backlog: int) -> None:
    """Serve the unsubscribe page and the one-click unsubscribe (RFC 8058).

    GET /unsubscribe?t=TOKEN shows a page with a button and changes nothing
    (link scanners fetch every link); POST unsubscribes, from the button or
    from the mail client's one-click request. Run it behind an https proxy
    at the [unsubscribe] url, or point any WSGI server at
    mailer.web.unsubscribe:create_app. It serves on waitress: a slow client
    holds no thread, idle connections close after 30 s, request headers
    over 16 KiB and bodies over 16 KiB are refused.

    \b
    Example:
        mailer serve --port 8080 --threads 8
    """
    from ..web.unsubscribe import create_app
    from ..web.unsubscribe_server import make_server

    options = ServeOptions(threads=threads, backlog=backlog)
    server = make_server(create_app(current_workspace().root), host, port, options)
    click.echo(f"Serving unsubscribes at http://{host}:{server.server_address[1]}/unsubscribe (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [serve]
