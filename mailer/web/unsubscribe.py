"""The unsubscribe page and the one-click unsubscribe, as a WSGI application.

Every message links to ``[unsubscribe] url?t=TOKEN`` from its footer and its
List-Unsubscribe header. Two requests arrive there:

- ``GET`` from a reader's browser — and from every link scanner and mail
  security gateway, which fetch each link of each message. So a GET only
  shows a page naming the address and the newsletter, with a button; it
  never changes anything.
- ``POST``: from that button, or from the mailbox provider itself (RFC 8058:
  Gmail, Yahoo and Apple Mail post ``List-Unsubscribe=One-Click`` to the
  List-Unsubscribe URL, token in its query string). It unsubscribes, once:
  a repeated POST finds the reader already unsubscribed and changes nothing.

A token that is not exactly one this store issued for this list (forged,
altered, truncated, padded, non-ASCII, or signed for another store or list:
see `mailer.tokens`) gets a plain 400 page and nothing changes; one that is
not even shaped like a token is refused before the store is opened. The
token of a test message (`send-issue --to`) names subscriber 0: its page
says so and records nothing.

Nothing here redirects, so there is no redirect to abuse; every page carries
a strict Content-Security-Policy, no-referrer (the token is in the URL) and
no-store. `mailer serve` runs the app on waitress (`unsubscribe_server`);
any WSGI server can run `create_app()` instead.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..config import Settings
from ..errors import StoreBusy
from ..language import words_for
from ..store import Store, Subscriber
from ..tokens import InvalidToken, TokenClaims, load_secret, well_formed
from ..workspace import Workspace, find_workspace, open_workspace

ACTOR = "unsubscribe page"
MAX_BODY = 16 * 1024
# How long a POST waits for another command's write before answering 503 with
# Retry-After. A send's or a sync's write lasts milliseconds, so 2 s rides over
# them; an import or a long command holding the lock longer must not hold every
# thread of a burst for the store's 30 s, when the mailbox provider retries anyway.
WRITE_WAIT = 2.0
WORKSPACE_ENV = "MAILER_WORKSPACE"

# The page's own words by language; `[vars.unsubscribe_page]` in
# newsletter.toml overrides any of them. {newsletter} and {email} are filled in.
STRINGS = {
    "en": {
        "confirm_title": "Unsubscribe from {newsletter}?",
        "confirm_body": "{email} will no longer receive {newsletter}.",
        "unsubscribe_button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_body": "{email} will receive no more issues of {newsletter}.",
        "undo_prompt": "Unsubscribed by mistake?",
        "resubscribe_button": "Subscribe again",
        "already_title": "Already unsubscribed",
        "already_body": "{email} no longer receives {newsletter}.",
        "resubscribed_title": "Welcome back",
        "resubscribed_body": "{email} will receive {newsletter} again.",
        "stopped_title": "No more issues to this address",
        "stopped_body": "{newsletter} is no longer sent to {email}.",
        "test_title": "This was a test message",
        "test_body": "The unsubscribe link of a test message names no subscriber, so nothing was changed.",
        "gone_title": "Not on the list",
        "gone_body": "This address is no longer on the list of {newsletter}.",
        "invalid_title": "This link is not valid",
        "invalid_body": "The unsubscribe link is incomplete or was changed. Copy the whole link from "
                        "the email, or use the unsubscribe link of a newer issue.",
        "busy_title": "Please try again",
        "busy_body": "The list is being updated. Try again in a moment.",
        "error_title": "Something went wrong",
        "error_body": "Nothing was changed. Please try again later.",
        "not_found_title": "Not found",
        "not_found_body": "There is no page at this address.",
    },
    "zh": {
        "confirm_title": "确认退订{newsletter}？",
        "confirm_body": "{email} 将不再收到{newsletter}。",
        "unsubscribe_button": "退订",
        "done_title": "已退订",
        "done_body": "{email} 将不再收到{newsletter}的任何一期。",
        "undo_prompt": "误点了退订？",
        "resubscribe_button": "重新订阅",
        "already_title": "此前已退订",
        "already_body": "{email} 已不再收到{newsletter}。",
        "resubscribed_title": "欢迎回来",
        "resubscribed_body": "{email} 将重新收到{newsletter}。",
        "stopped_title": "此地址已不再接收",
        "stopped_body": "{newsletter}已不再发往 {email}。",
        "test_title": "这是一封测试邮件",
        "test_body": "测试邮件中的退订链接不对应任何订阅者，因此没有做任何更改。",
        "gone_title": "不在订阅列表中",
        "gone_body": "此地址已不在{newsletter}的订阅列表中。",
        "invalid_title": "链接无效",
        "invalid_body": "退订链接不完整或已被改动。请从邮件中复制完整的链接，或使用较新一期邮件中的退订链接。",
        "busy_title": "请稍后再试",
        "busy_body": "订阅列表正在更新，请稍后再试。",
        "error_title": "出错了",
        "error_body": "没有做任何更改，请稍后再试。",
        "not_found_title": "页面不存在",
        "not_found_body": "此地址没有页面。",
    },
}

_CSS = """
:root { color-scheme: light dark; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  background: #f4f4f5; color: #18181b; line-height: 1.6;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
main { box-sizing: border-box; width: min(32rem, calc(100% - 2rem)); margin: 1rem; padding: 2rem 2.25rem;
  background: #fff; border-radius: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08), 0 8px 24px rgba(0,0,0,.06); }
.list { margin: 0 0 .5rem; color: #71717a; font-size: .875rem; letter-spacing: .02em; }
h1 { margin: 0 0 .75rem; font-size: 1.5rem; line-height: 1.3; }
p { margin: 0 0 1rem; overflow-wrap: anywhere; }
form { margin: 1.5rem 0 0; }
button { font: inherit; font-weight: 600; padding: .625rem 1.25rem; border-radius: 8px; cursor: pointer;
  border: 1px solid #18181b; background: #18181b; color: #fff; }
button.secondary { background: transparent; color: inherit; border-color: #a1a1aa; }
.undo { margin-top: 1.75rem; padding-top: 1.25rem; border-top: 1px solid #e4e4e7; }
.undo p { margin: 0; color: #52525b; font-size: .9375rem; }
.undo form { margin-top: .75rem; }
@media (prefers-color-scheme: dark) {
  body { background: #18181b; color: #f4f4f5; }
  main { background: #27272a; box-shadow: none; }
  .list, .undo p { color: #a1a1aa; }
  .undo { border-top-color: #3f3f46; }
  button { background: #f4f4f5; color: #18181b; border-color: #f4f4f5; }
  button.secondary { background: transparent; color: inherit; border-color: #71717a; }
}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode("utf-8")).digest()).decode("ascii")

SECURITY_HEADERS = [
    ("Content-Security-Policy",
     f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # The token is in the page's URL: no other site may see it as a referrer.
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Robots-Tag", "noindex, nofollow"),
]

_STATUS_LINES = {
    200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found", 405: "405 Method Not Allowed",
    413: "413 Content Too Large", 415: "415 Unsupported Media Type", 500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def page_strings(settings: Settings) -> dict[str, str]:
    """The page's words in the newsletter's language, with the workspace's overrides."""
    return words_for(settings, STRINGS, "unsubscribe_page")


class _Page:
    """What one request gets back: status, the words to show, and the forms on it."""

    def __init__(self, status: int, title: str, body: str, *, email: str = "",
                 forms: Iterable[tuple[str, str, str]] = (), undo: bool = False) -> None:
        self.status = status
        self.title = title
        self.body = body
        self.email = email
        self.forms = list(forms)  # (action value, button label, token)
        self.undo = undo


class UnsubscribeApp:
    """The WSGI application: `app(environ, start_response)`."""

    def __init__(self, workspace: Workspace, *, log: Callable[[str], None] | None = None) -> None:
        self.settings = workspace.settings
        self.store_path = workspace.store_path
        self.secret = load_secret(workspace.subscribers_dir)
        self.strings = page_strings(self.settings)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        configured = urlsplit(self.settings.unsubscribe.url).path.rstrip("/")
        self.paths = {"/unsubscribe", configured or "/unsubscribe"}
        self._write_lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        try:
            page, extra = self.handle(environ)
        except StoreBusy:
            page, extra = self._page(503, "busy"), [("Retry-After", "5")]
        except Exception:
            # Logged for the operator; the reader sees a plain page. Tracebacks
            # carry no secret: it is never in a message or an argument here.
            self.log("unsubscribe page error:\n" + traceback.format_exc())
            page, extra = self._page(500, "error"), []
        payload = self.render(page)
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(payload))),
                   ("Content-Language", self.settings.newsletter.language), *SECURITY_HEADERS, *extra]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response(_STATUS_LINES[page.status], headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [payload]

    def handle(self, environ: dict) -> tuple[_Page, list[tuple[str, str]]]:
        """The page for one request, and any extra headers; changes the store only on POST."""
        path = environ.get("PATH_INFO", "") or "/"
        if path.rstrip("/") not in self.paths:
            return self._page(404, "not_found"), []
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return self._page(405, "error"), [("Allow", "GET, HEAD, POST")]
        query = _form(environ.get("QUERY_STRING", ""))
        if method == "POST":
            fields = self._read_body(environ)
            if isinstance(fields, _Page):
                return fields, []
            # The token may be in the URL, the body or both: the same one twice is one, two are none.
            token = _single(list({*query.get("t", []), *fields.get("t", [])}))
        else:
            fields = None
            token = _single(query.get("t"))
        if token is None or not well_formed(token):
            return self._page(400, "invalid"), []
        with self._store() as store:
            # Checked against the store it acts on: a token of another store
            # (or of this path before the file was replaced) names someone else here.
            claims = self._verify(token)
            if claims is None:
                return self._page(400, "invalid"), []
            if claims.subscriber_id == 0:
                return self._page(200, "test"), []
            if fields is None:
                subscriber = store.subscriber_by_id(claims.subscriber_id)
                return self._status_page(subscriber, token, confirm=True), []
            return self._change(store, claims, token, fields), []

    def _read_body(self, environ: dict) -> dict[str, list[str]] | _Page:
        """The fields of a POST body, or the page refusing a body too big or of an unknown kind."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self._page(400, "invalid")
        if length > MAX_BODY or length < 0:
            return self._page(413, "invalid")
        body = environ["wsgi.input"].read(length) if length else b""
        fields = _post_fields(environ.get("CONTENT_TYPE", ""), body)
        if fields is None:
            return self._page(415, "invalid")
        return fields

    def _change(self, store: Store, claims: TokenClaims, token: str, fields: dict[str, list[str]]) -> _Page:
        """Unsubscribe, or resubscribe from the undo button, the subscriber `claims` names."""
        one_click = "One-Click" in fields.get("List-Unsubscribe", [])
        action = _single(fields.get("action")) or "unsubscribe"
        with self._writing():
            send = store.send_by_id(claims.send_id) if claims.send_id else None
            issue = f" of {send.issue}" if send else ""
            if action == "resubscribe" and not one_click:
                changed, subscriber = store.resubscribe_by_id(
                    claims.subscriber_id, reason=f"button on the unsubscribe page{issue}", actor=ACTOR)
                if changed:
                    return self._page(200, "resubscribed", email=subscriber.email)
                return self._status_page(subscriber, token, confirm=False)
            how = "one-click unsubscribe (List-Unsubscribe-Post)" if one_click else "unsubscribe page"
            changed, subscriber = store.unsubscribe_by_id(
                claims.subscriber_id, claims.send_id, reason=f"{how}{issue}", actor=ACTOR)
        if subscriber is not None and (changed or subscriber.status == "unsubscribed"):
            return self._page(200, "done", email=subscriber.email, undo=True,
                              forms=[("resubscribe", "resubscribe_button", token)])
        return self._status_page(subscriber, token, confirm=False)

    @contextmanager
    def _store(self) -> Iterator[Store]:
        """This thread's connection to the store, kept from one request to the next.

        Opening the store checks the file and sets a dozen pragmas, and the close
        of its last connection checkpoints and syncs the WAL: together 4/5 of a
        POST. The connection is opened again when the file at `store_path` is
        another one (restored from a backup, moved away) and dropped on any error.
        """
        kept = getattr(self._local, "store", None)
        identity = _identity(self.store_path)
        if kept is not None and kept[1] != identity:
            kept[0].close()
            kept = None
        if kept is None:
            store = Store.open(self.store_path, busy_timeout=WRITE_WAIT)
            # The store's facts are fixed for the file this connection has open.
            kept = self._local.store = (store, identity, store.signer(self.secret, self.settings.list_id))
        try:
            yield kept[0]
        except StoreBusy:
            raise  # the connection is sound: only the writes queued too long
        except BaseException:
            self._local.store = None
            kept[0].close()
            raise

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's writes one at a time: threads queued on a lock are woken the
        moment it is free, where SQLite's busy wait would poll with sleeps of up to
        100 ms each and a burst of POSTs would wait on each other for nothing."""
        if not self._write_lock.acquire(timeout=WRITE_WAIT):
            raise StoreBusy("the unsubscribe page's writes are queued too long", path=self.store_path)
        try:
            yield
        finally:
            self._write_lock.release()

    def _verify(self, token: str) -> TokenClaims | None:
        """The claims of `token`, checked by the signer of this thread's store (in `_store()`)."""
        try:
            return self._local.store[2].verify(token)
        except InvalidToken:
            return None

    def _status_page(self, subscriber: Subscriber | None, token: str, *, confirm: bool) -> _Page:
        """What a reader with `subscriber`'s token sees before (or instead of) any change."""
        if subscriber is None:
            return self._page(200, "gone")
        if subscriber.status == "active":
            return self._page(200, "confirm", email=subscriber.email,
                              forms=[("unsubscribe", "unsubscribe_button", token)])
        if subscriber.status == "unsubscribed":
            return self._page(200, "already", email=subscriber.email, undo=True,
                              forms=[("resubscribe", "resubscribe_button", token)])
        return self._page(200, "stopped", email=subscriber.email)

    def _page(self, status: int, name: str, **kwargs) -> _Page:
        return _Page(status, self.strings[f"{name}_title"], self.strings[f"{name}_body"], **kwargs)

    def render(self, page: _Page) -> bytes:
        """The HTML of `page`: every value escaped, no script, one inline style."""
        newsletter = self.settings.newsletter.name

        def fill(text: str) -> str:
            return escape(text).replace("{newsletter}", escape(newsletter)).replace(
                "{email}", f"<strong>{escape(page.email)}</strong>")

        forms = "".join(
            f'<form method="post" action="?t={escape(token)}">'
            f'<input type="hidden" name="action" value="{escape(action)}">'
            f'<button type="submit"{" class=secondary" if page.undo else ""}>'
            f"{escape(self.strings[label])}</button></form>"
            for action, label, token in page.forms
        )
        if page.undo and forms:
            forms = f'<div class="undo"><p>{escape(self.strings["undo_prompt"])}</p>{forms}</div>'
        title = fill(page.title)
        html = (
            "<!doctype html>\n"
            f'<html lang="{escape(self.settings.newsletter.language)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex, nofollow">'
            f"<title>{re.sub(r'<[^>]+>', '', title)}</title><style>{_CSS}</style></head>"
            f'<body><main><p class="list">{escape(newsletter)}</p><h1>{title}</h1>'
            f"<p>{fill(page.body)}</p>{forms}</main></body></html>\n"
        )
        return html.encode("utf-8")


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` (device and inode), None when none is."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _form(text: str) -> dict[str, list[str]]:
    """A query string or urlencoded body; junk yields nothing rather than an error."""
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=20, errors="replace")
    except ValueError:
        return {}


def _single(values: list[str] | None) -> str | None:
    """The one value given, or None when there is none or several."""
    return values[0] if values and len(values) == 1 else None


def _post_fields(content_type: str, body: bytes) -> dict[str, list[str]] | None:
    """The fields of a POST body; RFC 8058 allows urlencoded and multipart/form-data."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("", "application/x-www-form-urlencoded"):
        return _form(body.decode("latin-1"))
    if kind == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        fields: dict[str, list[str]] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if isinstance(name, str) and len(fields) < 20:
                    fields.setdefault(name, []).append(payload.decode("utf-8", "replace").strip())
        return fields
    return None


def create_app(workspace_dir: str | Path | None = None) -> UnsubscribeApp:
    """The app for the workspace at `workspace_dir`, ``$MAILER_WORKSPACE``, or the one around
    the current folder; what a WSGI server is pointed at."""
    given = workspace_dir or os.environ.get(WORKSPACE_ENV)
    workspace = open_workspace(Path(given)) if given else find_workspace()
    workspace.settings  # fail now, with the file's error, rather than on the first request
    return UnsubscribeApp(workspace)
