"""The unsubscribe server."""

from __future__ import annotations

import click

from .options import current_workspace


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (put TLS in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the unsubscribe page and the one-click unsubscribe (RFC 8058).

    GET /unsubscribe?t=TOKEN shows a page with a button and changes nothing
    (link scanners fetch every link); POST unsubscribes, from the button or
    from the mail client's one-click request. Run it behind an https proxy
    at the [unsubscribe] url, or point any WSGI server at
    mailer.web.unsubscribe:create_app.

    \b
    Example:
        mailer serve --port 8080
    """
    from ..web.unsubscribe import create_app, make_server

    server = make_server(create_app(current_workspace().root), host, port)
    click.echo(f"Serving unsubscribes at http://{host}:{server.server_address[1]}/unsubscribe (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [serve]
