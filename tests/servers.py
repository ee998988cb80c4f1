"""Real servers for the sending tests: moto's SES/SQS server mode, SMTP, a faulty proxy.

Nothing here mocks boto3 or smtplib: boto3 talks HTTP to moto's server on a
free port of 127.0.0.1 (pointed there by the standard AWS_ENDPOINT_URL), and
smtplib talks SMTP to an aiosmtpd server in the test process.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol

SENDER = "weekly@newsletter.example.com"

# How often a test's HTTP server looks for a shutdown: socketserver's default
# poll_interval, 0.5 s, is what every test would wait for its server to stop.
SHUTDOWN_POLL = 0.02


@dataclass
class Moto:
    """A running moto server and the way to read what it received."""

    url: str

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request).read()

    def data(self) -> dict:
        return json.load(urllib.request.urlopen(f"{self.url}/moto-api/data.json"))

    def raw_messages(self) -> list[dict]:
        """Every raw message SES accepted: destinations, source and raw_data."""
        return self.data().get("ses", {}).get("RawMessage", [])

    def parsed_messages(self):
        return [message_from_bytes(m["raw_data"].encode("utf-8"), policy=policy.default)
                for m in self.raw_messages()]


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode, for the whole test session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield Moto(f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch):
    """The standard AWS variables pointing boto3 at moto; moto reset before each test."""
    moto_server.reset()
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SESV2", raising=False)
    return moto_server


@pytest.fixture
def ses(aws_env):
    """moto with the newsletter's sender verified, as SES requires."""
    import boto3

    boto3.client("ses", endpoint_url=aws_env.url).verify_email_identity(EmailAddress=SENDER)
    return aws_env


@dataclass
class SmtpServer:
    """An SMTP server in this process that records what it receives.

    `refuse` maps a recipient address to (code, message) answered to RCPT;
    `data_reply` answers DATA instead of accepting; `drop_on_data` closes the
    connection after reading the message, without answering.
    """

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    data_reply: str = ""
    drop_on_data: bool = False
    connections: int = 0


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, options):
        if address in self.server.refuse:
            code, text = self.server.refuse[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.drop_on_data:
            smtp.transport.close()
            return "250 never heard"
        if self.server.data_reply:
            return self.server.data_reply
        self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued as test"


class _CountingSMTP(SMTPProtocol):
    def connection_made(self, transport):
        self.event_handler.server.connections += 1
        super().connection_made(transport)


class _Controller(Controller):
    def factory(self):
        return _CountingSMTP(self.handler, decode_data=False, **self.SMTP_kwargs)


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free port of 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SmtpServer(port=port)
    controller = _Controller(_Handler(server), hostname="127.0.0.1", port=port)
    controller.start()
    server.connections = 0  # the controller's own start-up probe
    yield server
    controller.stop()


class FaultyProxy:
    """An HTTP proxy in front of moto that misbehaves on purpose.

    Every `throttle_every`-th SendEmail is answered with SES's real throttling
    error (HTTP 429, x-amzn-ErrorType: TooManyRequestsException) without
    reaching moto; every `drop_every`-th is forwarded to moto — so SES takes
    it — and then the client's connection is closed with no answer. With
    `fail_deletes`, every SQS DeleteMessage is answered with a 500: the store
    has committed, and the message stays, as after a crash right then. While
    `outage` is set, every SendEmail is answered with SES's 500
    InternalFailure; a SendEmail to an address in `refuse` gets SES's 400
    MessageRejected for that recipient.
    """

    def __init__(self, target: str, throttle_every: int = 0, drop_every: int = 0,
                 fail_deletes: bool = False) -> None:
        self.target = target
        self.throttle_every = throttle_every
        self.drop_every = drop_every
        self.fail_deletes = fail_deletes
        self.outage = False
        self.refuse: set[str] = set()
        self.count = 0
        self.throttled = 0
        self.dropped = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def reply(self, status: int, content_type: str, payload: bytes, **headers: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.fail_deletes and ("DeleteMessage" in self.headers.get("X-Amz-Target", "")
                                           or b"Action=DeleteMessage" in body):
                    self.reply(500, "application/x-amz-json-1.0",
                               b'{"__type": "InternalFailure", "message": "try again"}')
                    return
                sending = self.path.startswith("/v2/email/outbound-emails")
                with proxy.lock:
                    if sending:
                        proxy.count += 1
                    n = proxy.count
                if sending and proxy.outage:
                    self.reply(500, "application/json", b'{"message": "Internal failure."}',
                               x_amzn_ErrorType="InternalFailure")
                    return
                if sending and any(f'"{address}"'.encode() in body for address in proxy.refuse):
                    self.reply(400, "application/json",
                               b'{"message": "Email address is not verified. The following identities '
                               b'failed the check in region US-EAST-1: nobody@example.com"}',
                               x_amzn_ErrorType="MessageRejected")
                    return
                if sending and proxy.throttle_every and n % proxy.throttle_every == 0:
                    with proxy.lock:
                        proxy.throttled += 1
                    self.reply(429, "application/json",
                               json.dumps({"message": "Maximum sending rate exceeded."}).encode(),
                               x_amzn_ErrorType="TooManyRequestsException")
                    return
                status, headers, answer = proxy.forward(self.command, self.path, self.headers, body)
                if sending and proxy.drop_every and n % proxy.drop_every == 0:
                    with proxy.lock:
                        proxy.dropped += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                       daemon=True)

    def forward(self, method, path, headers, body):
        host, port = self.target.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(method, path, body=body,
                         headers={k: v for k, v in headers.items() if k.lower() != "host"})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
