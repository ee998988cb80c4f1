"""Real servers for `mailer doctor`'s tests: DNS, an SESv2 endpoint, SMTP with a login, TLS.

- A DNS server (dnslib) on 127.0.0.1 serving a small zone per test, and one
  that never answers, for "could not check".
- An SESv2 endpoint for what moto does not implement (GetAccount, DKIM
  tokens, MAIL FROM attributes, event destinations): it answers each GET
  with the JSON SES documents for it (botocore's sesv2 service model).
- The SES answers and DNS records of an account ready to send
  (`healthy_ses`), which each test breaks in one place.
- An aiosmtpd server that asks for a login, with or without STARTTLS, on a
  certificate for 127.0.0.1 that `SSL_CERT_FILE` makes trusted.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dnslib import CNAME, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.servers import SHUTDOWN_POLL


class _Zone(BaseResolver):
    """Answers from `records`: (name, type) → values; a known name without that type is NODATA."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        for value in self.records.get((name, kind), []):
            data = TXT(value) if kind == "TXT" else CNAME(value)
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=data, ttl=60))
        if not any(n == name for n, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class Nameserver:
    """A DNS server on 127.0.0.1 whose records a test sets."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def nameserver(monkeypatch):
    """A real DNS server on a free UDP port; MAILER_DNS_SERVER points the doctor at it."""
    zone = Nameserver()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    server = DNSServer(_Zone(zone.records), address="127.0.0.1", port=0, logger=quiet)
    zone.port = server.server.server_address[1]
    threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                     daemon=True).start()
    monkeypatch.setenv("MAILER_DNS_SERVER", zone.address)
    monkeypatch.setenv("MAILER_DNS_TIMEOUT", "2")
    yield zone
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def silent_nameserver(monkeypatch):
    """A UDP port that reads every query and never answers, like a resolver out of reach."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv("MAILER_DNS_SERVER", f"127.0.0.1:{sock.getsockname()[1]}")
    monkeypatch.setenv("MAILER_DNS_TIMEOUT", "0.3")
    yield
    sock.close()


class SesEndpoint:
    """An SESv2 endpoint: `answers` maps a request path to the JSON SES answers for it.

    A path without an answer gets SES's NotFoundException, as the real
    service answers for an identity or configuration set that does not exist.
    """

    def __init__(self) -> None:
        self.answers: dict[str, dict] = {}
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                answer = endpoint.answers.get(self.path.split("?")[0])
                status = 200 if answer is not None else 404
                payload = json.dumps(answer if answer is not None else {"message": f"{self.path} not found"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if answer is None:
                    self.send_header("x-amzn-ErrorType", "NotFoundException")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ses_endpoint(aws_env, monkeypatch):
    """SESv2 calls go to a `SesEndpoint`; SQS still to moto (through AWS_ENDPOINT_URL)."""
    endpoint = SesEndpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", endpoint.url)
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate file, key file).

    Made with `cryptography`, which moto already brings in.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def trusted_certificate(certificate, monkeypatch):
    """The test certificate trusted by ssl.create_default_context(), as a CA's would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    return certificate


def _authenticator(users: dict[str, str]):
    def check(server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        # handled=False: aiosmtpd answers the failure itself (535), as a real server does.
        return AuthResult(success=users.get(login) == auth_data.password.decode(), handled=False)
    return check


@pytest.fixture
def login_smtp_server(request):
    """An SMTP server asking for a login; `starttls` (indirect param or default) offers TLS."""
    options = getattr(request, "param", {})
    users = {"writer": "right password"}
    kwargs = {"authenticator": _authenticator(users), "auth_require_tls": False}
    if options.get("starttls"):
        cert, key = request.getfixturevalue("trusted_certificate")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    yield port
    controller.stop()


REAL_UNSUBSCRIBE = "https://news.cloudweekly.org/unsubscribe"


@pytest.fixture
def doctor_settings(workspace_dir):
    """Rewrites the example workspace's newsletter.toml for a transport, sender and extra tables."""
    path = workspace_dir / "newsletter.toml"
    original = path.read_text(encoding="utf-8")

    def write(kind: str, *, sender: str = "", unsubscribe: str = REAL_UNSUBSCRIBE, extra: str = "") -> None:
        text = original.replace('kind = "outbox"', f'kind = "{kind}"').replace(
            'url = "https://newsletter.example.com/unsubscribe"', f'url = "{unsubscribe}"')
        if sender:
            text = text.replace('address = "weekly@newsletter.example.com"', f'address = "{sender}"')
        path.write_text(text + "\n" + extra, encoding="utf-8")

    return write


def lines(result) -> dict[str, str]:
    """Each check's line by its name: 'status name: detail (hint)'."""
    found = {}
    for line in result.output.splitlines()[:-1]:
        status, _, rest = line.partition(" ")
        name, _, _ = rest.strip().partition(":")
        found[name] = f"{status} {rest.strip()}"
    return found


DOMAIN = "newsletter.example.com"
TOKENS = ["abcdefghijklmnopqrstuvwxyz234567", "bcdefghijklmnopqrstuvwxyz2345678", "cdefghijklmnopqrstuvwxyz23456789"]
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

ACCOUNT = {
    "DedicatedIpAutoWarmupEnabled": False,
    "EnforcementStatus": "HEALTHY",
    "ProductionAccessEnabled": True,
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 120.0},
    "SendingEnabled": True,
    "SuppressionAttributes": {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]},
}


def domain_identity(**changes) -> dict:
    answer = {
        "IdentityType": "DOMAIN", "FeedbackForwardingStatus": True, "VerifiedForSendingStatus": True,
        "VerificationStatus": "SUCCESS", "Policies": {}, "Tags": [],
        "DkimAttributes": {"SigningEnabled": True, "Status": "SUCCESS", "Tokens": TOKENS,
                           "SigningAttributesOrigin": "AWS_SES", "NextSigningKeyLength": "RSA_2048_BIT",
                           "CurrentSigningKeyLength": "RSA_2048_BIT"},
        "MailFromAttributes": {"MailFromDomain": f"bounce.{DOMAIN}", "MailFromDomainStatus": "SUCCESS",
                               "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
    }
    answer.update(changes)
    return answer


def good_zone(domain: str = DOMAIN) -> dict:
    zone = {
        (domain, "TXT"): ["v=spf1 include:amazonses.com ~all"],
        (f"bounce.{domain}", "TXT"): ["v=spf1 include:amazonses.com ~all"],
        (f"_dmarc.{domain}", "TXT"): [f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"],
    }
    for token in TOKENS:
        zone[(f"{token}._domainkey.{domain}", "CNAME")] = [f"{token}.dkim.amazonses.com."]
    return zone


SNS_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
    "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}}}]}


def make_queue(policy: dict | None = SNS_POLICY) -> str:
    """A queue on moto (AWS_ENDPOINT_URL), with the policy SNS's subscription adds."""
    attributes = {"Policy": json.dumps(policy)} if policy else {}
    return boto3.client("sqs").create_queue(QueueName="ses-feedback", Attributes=attributes)["QueueUrl"]


@pytest.fixture
def healthy_ses(ses_endpoint, nameserver, doctor_settings):
    """An SES account ready to send for newsletter.example.com, with DNS and a queue to match."""
    ses_endpoint.answers.update({
        "/v2/email/account": ACCOUNT,
        f"/v2/email/identities/{DOMAIN}": domain_identity(),
        "/v2/email/configuration-sets/newsletter": {"ConfigurationSetName": "newsletter",
                                                    "SendingOptions": {"SendingEnabled": True}},
        "/v2/email/configuration-sets/newsletter/event-destinations": {"EventDestinations": [{
            "Name": "to-sns", "Enabled": True, "MatchingEventTypes": ["BOUNCE", "COMPLAINT", "DELIVERY"],
            "SnsDestination": {"TopicArn": TOPIC}}]},
    })
    nameserver.records.update(good_zone())
    queue = make_queue()
    doctor_settings("ses", extra=f'[ses]\nconfiguration_set = "newsletter"\n\n[feedback]\nqueue_url = "{queue}"\n')
    return ses_endpoint
