"""The preview server: an issue in the browser, re-rendered on every save.

Built the way mkdocs' live reload is: a plain HTTP server on 127.0.0.1, a
watcher that bumps a build *epoch* whenever a source changes, and a page
that long-polls ``/api/epoch`` and, when the epoch moves, fetches the new
render and swaps the email into its iframe without reloading itself, so the
chosen tab, width and scroll position stay where the writer left them.

A render error never stops the server: the page shows it with its file and
line over the last good render, and the next save that fixes it recovers.

Watching is a stat poll rather than inotify: it sees saves on network
shares, container volumes and WSL's Windows drives, where file events never
arrive, it needs no dependency, and the set it polls is small — the
settings, the templates, the issue folder's names and the issues a page has
opened — so a 50 ms tick costs a few dozen ``stat`` calls.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import secrets
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..compose import build
from ..compose.lint import GMAIL_CLIP_BYTES, lint
from ..config import CONFIG_NAME
from ..errors import IssueError, MailerError, PortInUse
from ..workspace import Workspace, issue_files
from .server import QuietServer

HOST = "127.0.0.1"
POLL_SECONDS = 0.05
# A save is often two writes (truncate, then write); wait this long for the
# file to hold still so the page never flashes the half-written state.
SETTLE_SECONDS = 0.02
# How long /api/epoch holds a request open before answering "no change";
# well under the idle timeouts of browsers and proxies.
LONG_POLL_SECONDS = 20.0
PAGE = "preview_page.html"

# Editors' swap, backup and lock files change while the writer types;
# they are not sources.
_IGNORED_PREFIXES = (".", "#")
_IGNORED_SUFFIXES = ("~", ".swp", ".swx", ".tmp")



class Preview:
    """What the server's threads share: the sources, the epoch and the renders.

    Renders are made on request and kept per issue for the current epoch, so
    a change costs one render per open issue, however many tabs show it.
    """

    def __init__(self, workspace: Workspace, issue: Path | None = None,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.root = workspace.root.resolve()
        self.given = issue.resolve() if issue is not None else None
        self.log = log
        self.server_id = secrets.token_hex(6)
        self._dirs = (workspace.issues_dir, workspace.templates_dir)
        self._epoch = 1
        self._closed = False
        self._changed = threading.Condition()
        self._render_lock = threading.Lock()
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self._last_good: dict[str, dict[str, Any]] = {}
        # Each issue a page has opened, with its stat when it was first read:
        # the watcher's baseline for it.
        self._opened: dict[Path, Any] = {self.given: _stat(self.given)} if self.given else {}

    # -- the epoch ---------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    def bump(self) -> int:
        """A source changed: every render is out of date from now on."""
        with self._changed:
            self._epoch += 1
            self._changed.notify_all()
            return self._epoch

    def wait_for_epoch(self, since: int, timeout: float = LONG_POLL_SECONDS) -> int:
        """The epoch, once it differs from `since` or `timeout` has passed."""
        with self._changed:
            self._changed.wait_for(lambda: self._epoch != since or self._closed, timeout)
            return self._epoch

    def close(self) -> None:
        """Answer every waiting long poll now, so shutdown is not held up."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- the sources -------------------------------------------------------

    def issues(self) -> dict[str, Path]:
        """Every issue a page can switch to, by stem, oldest name first."""
        found = issue_files(self._dirs[0])
        if self.given is not None:
            found.setdefault(self.given.stem, self.given)
        return found

    def default_issue(self) -> str | None:
        """The issue a page opens with: the one given, else the newest by name."""
        if self.given is not None:
            return self.given.stem
        stems = list(self.issues())
        return stems[-1] if stems else None

    def snapshot(self) -> dict[Any, Any]:
        """What the watcher compares: a stat of every source, keyed by what it is."""
        issues_dir, templates_dir = self._dirs
        state: dict[Any, Any] = {("settings",): _stat(self.root / CONFIG_NAME)}
        for folder, dirs, files in os.walk(templates_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith(_IGNORED_PREFIXES))
            for name in files:
                if not _ignored(name):
                    path = os.path.join(folder, name)
                    state[("template", path)] = _stat(path)
        state[("issue names",)] = tuple(self.issues())
        for path in list(self._opened):
            state[("issue", path)] = _stat(path)
        return state

    def changed(self, before: dict[Any, Any], after: dict[Any, Any]) -> bool:
        """Whether a source differs between two snapshots.

        An issue a page opened in between is compared with its stat when it
        was read, so opening it is no change but saving it right after is.
        """
        for key in before.keys() | after.keys():
            old = before.get(key)
            if key[0] == "issue" and key not in before:
                old = self._opened.get(key[1])
            if old != after.get(key):
                return True
        return False

    # -- rendering ---------------------------------------------------------

    def render(self, stem: str | None) -> dict[str, Any]:
        """The page's view of issue `stem` for the current epoch, as JSON-ready data.

        On an error the data carries the error and the last good render, if any.
        """
        stem = stem or self.default_issue()
        with self._render_lock:
            epoch = self._epoch
            if stem is not None:
                cached = self._cache.get(stem)
                if cached is not None and cached[0] == epoch:
                    return cached[1]
            started = time.perf_counter()
            issues = self.issues()
            error = None
            try:
                # Fresh each time: newsletter.toml may have changed.
                workspace = Workspace(self.root)
                self._dirs = (workspace.issues_dir, workspace.templates_dir)
                issues = self.issues()
                path = self._issue_path(stem, issues)
                self._opened.setdefault(path.resolve(), _stat(path))
                email = self._email(workspace, build.render_issue(workspace, path))
                if stem is not None:
                    self._last_good[stem] = email
            except MailerError as exc:
                error = self._error(exc)
                email = self._last_good.get(stem) if stem is not None else None
            except Exception as exc:  # a bug in mailer must not stop the preview
                traceback.print_exc()
                error = {"text": f"internal error: {type(exc).__name__}: {exc} "
                                 "(the traceback is in the terminal)",
                         "where": "", "message": str(exc), "hint": "", "line": None}
                email = self._last_good.get(stem) if stem is not None else None
            millis = (time.perf_counter() - started) * 1000
            data = {
                "server": self.server_id,
                "epoch": epoch,
                "issue": stem,
                "issues": list(issues),
                "email": email,
                "error": error,
                "render_ms": round(millis, 1),
                "rendered_at": datetime.now().strftime("%H:%M:%S"),
            }
            if stem is not None:
                self._cache[stem] = (epoch, data)
        if error is None:
            self.log(f"Rendered {stem} in {millis:.0f} ms")
        else:
            self.log(f"Error: {error['text']}")
        return data

    def _issue_path(self, stem: str | None, issues: dict[str, Path]) -> Path:
        if stem is None:
            raise IssueError("no issues yet", path=self._dirs[0],
                             hint="write one, e.g. issues/2024-27.md; it appears here when saved")
        if stem not in issues:
            raise IssueError("no such issue", path=self._dirs[0] / f"{stem}.md",
                             hint="it was renamed or deleted; pick another issue")
        return issues[stem]

    def _email(self, workspace: Workspace, rendered: build.RenderedIssue) -> dict[str, Any]:
        """What the page shows of one rendered issue, as the sample subscriber gets it."""
        settings = workspace.settings
        recipient = build.sample_recipient(workspace)
        html, text = rendered.personalize(recipient, settings.newsletter.default_name)
        source = rendered.issue.path
        findings = [
            {"level": f.level, "message": f.message, "line": f.line,
             "where": f"{self._relative(source)}:{f.line}" if f.line else self._relative(source)}
            for f in lint(rendered, settings).findings
        ]
        return {
            "from_name": settings.from_name,
            "from_address": settings.sender.address,
            "to": recipient.email,
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "html": html,
            "text": text,
            "size": len(rendered.html.encode("utf-8")),
            "clip_limit": GMAIL_CLIP_BYTES,
            "lint": findings,
            "source": self._relative(source),
        }

    def _error(self, exc: MailerError) -> dict[str, Any]:
        shown = copy.copy(exc)
        if exc.path is not None:
            shown.path = Path(self._relative(exc.path))
        where = ""
        if shown.path is not None:
            where = f"{shown.path}:{shown.line}" if shown.line else str(shown.path)
        return {"text": str(shown), "where": where, "message": exc.message,
                "hint": exc.hint or "", "line": exc.line}

    def _relative(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def _stat(path: str | Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _ignored(name: str) -> bool:
    return name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES)


class _Watcher(threading.Thread):
    """Polls the sources and bumps the epoch when any of them changes."""

    def __init__(self, preview: Preview, interval: float) -> None:
        super().__init__(name="mailer-preview-watcher", daemon=True)
        self.preview = preview
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        before = self.preview.snapshot()
        while not self.stopping.wait(self.interval):
            try:
                before = self._tick(before)
            except Exception:  # a bug here must not end live reload silently
                traceback.print_exc()

    def _tick(self, before: dict[Any, Any]) -> dict[Any, Any]:
        after = self.preview.snapshot()
        if not self.preview.changed(before, after):
            return after
        for _ in range(10):
            time.sleep(SETTLE_SECONDS)
            settled = self.preview.snapshot()
            if settled == after:
                break
            after = settled
        self.preview.bump()
        return after


class _Handler(BaseHTTPRequestHandler):
    """The few routes of the preview: the page, its data, and the bare email."""

    server: "_HTTPServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body
    # waits for the browser's delayed ACK, 40 ms on Linux, on every answer.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        if not self._host_allowed():
            self._send(HTTPStatus.FORBIDDEN, b"unknown host\n", "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        preview = self.server.preview
        if url.path == "/":
            page = resources.files(__package__).joinpath(PAGE).read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif url.path == "/api/render":
            self._json(preview.render(query.get("issue") or None))
        elif url.path == "/api/epoch":
            since = _int(query.get("since"))
            if query.get("server") not in (None, preview.server_id):
                since = -1  # a page from a previous run: answer at once
            epoch = preview.wait_for_epoch(since)
            self._json({"server": preview.server_id, "epoch": epoch})
        elif url.path == "/email":
            data = preview.render(query.get("issue") or None)
            if data["email"] is None:
                self._send(HTTPStatus.NOT_FOUND, (data["error"]["text"] + "\n").encode(),
                           "text/plain; charset=utf-8")
            else:
                self._send(HTTPStatus.OK, data["email"]["html"].encode(), "text/html; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _host_allowed(self) -> bool:
        """Refuse other host names, so a web page cannot rebind its name to us."""
        host = self.headers.get("Host")
        port = self.server.server_address[1]
        return host is None or host in (f"{HOST}:{port}", f"localhost:{port}")

    def _json(self, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(HTTPStatus.OK, body, "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tab was closed or reloaded mid-answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every poll would print a line; renders are logged instead


class _HTTPServer(QuietServer):
    def __init__(self, address: tuple[str, int], preview: Preview) -> None:
        self.preview = preview
        super().__init__(address, _Handler)

    @staticmethod
    def refusal(exc: OSError, host: str, port: int) -> PortInUse | None:
        # `mailer preview` binds 127.0.0.1 only, so the port is all a writer can change.
        if exc.errno == errno.EADDRINUSE:
            return PortInUse(f"port {port} is in use",
                             hint="pick another with --port, or leave it out for a free one")
        if exc.errno == errno.EACCES:
            return PortInUse(f"port {port} needs privileges", hint="pick one above 1023, or leave --port out")
        return None


class PreviewServer:
    """A running preview: HTTP server and watcher, each on its own thread."""

    def __init__(self, workspace: Workspace, issue: Path | None = None, *, port: int = 0,
                 log: Callable[[str], None] = lambda message: None,
                 interval: float = POLL_SECONDS) -> None:
        self.preview = Preview(workspace, issue, log)
        self.httpd = _HTTPServer((HOST, port), self.preview)
        self.watcher = _Watcher(self.preview, interval)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}/"

    def start(self) -> "PreviewServer":
        """Serve and watch in the background; `stop` ends both."""
        self.watcher.start()
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        name="mailer-preview-http", daemon=True)
        self._thread.start()
        return self

    def serve(self) -> None:
        """Serve and watch until interrupted (Ctrl+C)."""
        self.watcher.start()
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self.watcher.stopping.set()
        self.preview.close()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()

    def __enter__(self) -> "PreviewServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def open_browser(url: str) -> bool:
    """Open `url` in the default browser, if this session has a graphical one.

    Without a display Python's webbrowser falls back to a text browser that
    would take over the terminal the server is printing to.
    """
    if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
