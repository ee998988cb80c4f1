"""DNS for the sender's domain: SPF, DMARC and the DKIM CNAMEs SES asks for.

Looked up with dnspython, with a timeout. No answer at all (no network, a
resolver that is down) is "could not check", a warning: the doctor cannot
say the records are wrong when it could not read them. An answer that the
name or record does not exist is a finding.

The resolver is the system's, unless ``MAILER_DNS_SERVER`` names one as
``HOST`` or ``HOST:PORT`` (tests run their own on 127.0.0.1);
``MAILER_DNS_TIMEOUT`` is the seconds to wait for each name (default 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dns.exception
import dns.resolver

from ..errors import MailerError
from .report import Check, ok, problem, warning
from .ses import Identity

DNS_SERVER_ENV, DNS_TIMEOUT_ENV = "MAILER_DNS_SERVER", "MAILER_DNS_TIMEOUT"


class NoAnswer(Exception):
    """The resolver gave no answer: the record may be fine; nobody can tell."""


@dataclass
class Lookup:
    """TXT and CNAME lookups through one resolver."""

    resolver: dns.resolver.Resolver

    @classmethod
    def from_environment(cls) -> Lookup:
        """The nameserver of MAILER_DNS_SERVER, else the system's; a bad value is a `MailerError`."""
        server = os.environ.get(DNS_SERVER_ENV, "").strip()
        given = os.environ.get(DNS_TIMEOUT_ENV, "").strip()
        try:
            timeout = float(given or 5)
        except ValueError:
            raise MailerError(f"{DNS_TIMEOUT_ENV} must be seconds, got {given!r}") from None
        try:
            resolver = dns.resolver.Resolver(configure=not server)
        except dns.resolver.NoResolverConfiguration:
            raise MailerError("no nameserver configured on this system",
                              hint=f"set {DNS_SERVER_ENV}=HOST[:PORT]") from None
        if server:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            try:
                resolver.nameservers = [host]
                resolver.port = int(port or 53)
            except ValueError:
                raise MailerError(f"{DNS_SERVER_ENV} must be HOST or HOST:PORT (an IP address), "
                                  f"got {server!r}") from None
        resolver.lifetime = timeout
        resolver.timeout = timeout
        return cls(resolver)

    def _answer(self, name: str, kind: str):
        try:
            return self.resolver.resolve(name, kind)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration,
                OSError) as exc:
            raise NoAnswer(" ".join(str(exc).split()) or type(exc).__name__) from None

    def txt(self, name: str) -> list[str]:
        answer = self._answer(name, "TXT")
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer] if answer else []

    def cname(self, name: str) -> str:
        answer = self._answer(name, "CNAME")
        return str(answer[0].target).rstrip(".").lower() if answer else ""


def _could_not(name: str, what: str, exc: NoAnswer) -> Check:
    return warning(name, f"could not check {what}: no answer from DNS ({exc})",
                   f"check again with network, or set {DNS_SERVER_ENV}")


def _spf_records(lookup: Lookup, domain: str) -> list[str]:
    return [r for r in lookup.txt(domain) if r.lower().split(" ", 1)[0] == "v=spf1"]


def spf(lookup: Lookup, identity: Identity, *, ses: bool = True) -> Check:
    """SPF of the MAIL FROM domain (or else of the sender's domain) includes amazonses.com."""
    domain = identity.mail_from_domain or identity.domain
    try:
        records = _spf_records(lookup, domain)
    except NoAnswer as exc:
        return _could_not("spf", f"SPF of {domain}", exc)
    if len(records) > 1:
        return problem("spf", f"{domain} has {len(records)} SPF records; receivers treat that as an error",
                       "merge them into one v=spf1 record")
    if not records:
        if ses and not identity.mail_from_domain:
            return warning("spf", f"{domain} has no SPF record",
                           "add v=spf1 include:amazonses.com ~all, or set a custom MAIL FROM domain")
        return problem("spf", f"{domain} has no SPF record", "add v=spf1 include:amazonses.com ~all"
                       if ses else "add the SPF record your SMTP provider gives")
    if not ses:
        return ok("spf", f"{domain}: {records[0]}")
    if "include:amazonses.com" in records[0].lower().split():
        return ok("spf", f"{domain} includes amazonses.com")
    if identity.mail_from_domain:
        return problem("spf", f"the MAIL FROM domain {domain} does not include amazonses.com: {records[0]}",
                       "add include:amazonses.com to it")
    return warning("spf", f"{domain} does not include amazonses.com: {records[0]}",
                   "add include:amazonses.com, or set a custom MAIL FROM domain")


def _tags(record: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in record.split(";"))
    return {key.strip().lower(): value.strip() for key, _, value in pairs if key.strip()}


def _aligned(domain: str, sender: str, strict: bool) -> bool:
    """DMARC alignment: strict is the same name; relaxed a subdomain either way."""
    if not domain:
        return False
    if strict:
        return domain == sender
    return domain == sender or domain.endswith("." + sender) or sender.endswith("." + domain)


def dmarc(lookup: Lookup, identity: Identity, *, alignment: bool = True) -> Check:
    """A DMARC record at _dmarc of the domain (or a parent), aligned through DKIM or SPF.

    Alignment is judged only where the identity is known (SES); an SMTP
    relay's signing domain is not something the doctor can see.
    """
    labels = identity.domain.split(".")
    try:
        for start in range(0, max(len(labels) - 1, 1)):
            at = "_dmarc." + ".".join(labels[start:])
            records = [r for r in lookup.txt(at) if r.lower().replace(" ", "").startswith("v=dmarc1")]
            if records:
                break
        else:
            return problem("dmarc", f"no DMARC record at _dmarc.{identity.domain}",
                           "Gmail and Yahoo require one of bulk senders; start with v=DMARC1; p=none")
    except NoAnswer as exc:
        return _could_not("dmarc", f"DMARC of {identity.domain}", exc)
    tags = _tags(records[0])
    through = [how for how, domain, mode in (("DKIM", identity.dkim_domain, tags.get("adkim", "r")),
                                             ("SPF", identity.mail_from_domain, tags.get("aspf", "r")))
               if _aligned(domain.lower(), identity.domain, mode == "s")]
    policy = f"p={tags.get('p', '?')} at {at}"
    if not alignment:
        return ok("dmarc", f"{policy} (alignment depends on how the relay signs; not checked)")
    if not through:
        return problem("dmarc", f"{policy}, but neither DKIM nor SPF aligns with {identity.domain}",
                       "sign with DKIM as the sender's domain (Easy DKIM on the domain identity)")
    return ok("dmarc", f"{policy}, aligned through {' and '.join(through)}")


def dkim(lookup: Lookup, identity: Identity) -> Check:
    """Each DKIM token SES gave resolves as <token>._domainkey.<domain> to SES's key."""
    if not identity.dkim_tokens:
        return warning("dkim-dns", f"SES lists no DKIM records for {identity.domain}",
                       "verify the domain (not only the address) in SES with Easy DKIM")
    wrong = []
    try:
        for token in identity.dkim_tokens:
            name = f"{token}._domainkey.{identity.domain}"
            target = lookup.cname(name)
            if not target.endswith(".dkim.amazonses.com") or not target.startswith(token.lower()):
                wrong.append(f"{name} -> {target or 'nothing'}")
    except NoAnswer as exc:
        return _could_not("dkim-dns", f"DKIM records of {identity.domain}", exc)
    if wrong:
        return problem("dkim-dns", f"{len(wrong)} of {len(identity.dkim_tokens)} DKIM CNAME(s) wrong: "
                                   f"{'; '.join(wrong)}",
                       "publish each as a CNAME to <token>.dkim.amazonses.com")
    return ok("dkim-dns", f"{len(identity.dkim_tokens)} DKIM CNAMEs resolve to amazonses.com")
