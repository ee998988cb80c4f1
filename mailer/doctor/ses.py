"""Amazon SES: credentials, region, the account's state, the sender identity, the
configuration set and the feedback queue.

Starts from the same session `mailer send-issue` and `mailer sync` use
(`mailer.aws.session`), so a line here is true of them. Only reads: every
call is a Get, safe to repeat. What the identity says about DKIM and the
MAIL FROM domain is kept in `Identity` for the DNS checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import botocore.config
import botocore.exceptions

from .. import aws
from ..config import Settings
from ..errors import MailerError
from ..feedback.sqs import queue_region
from .report import Check, guarded, ok, problem, warning

_CONFIG = botocore.config.Config(connect_timeout=5, read_timeout=10,
                                 retries={"mode": "standard", "total_max_attempts": 2})

# botocore's names for where the credentials came from, in words.
_METHODS = {
    "env": "environment variables (AWS_ACCESS_KEY_ID)",
    "assume-role": "an assumed role of the profile",
    "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "sso": "AWS IAM Identity Center (SSO)",
    "container-role": "the container's role",
    "iam-role": "the instance's role (EC2 metadata)",
    "custom-process": "the profile's credential_process",
}


@dataclass
class Identity:
    """What SES says about the sender: for the DNS checks that follow."""

    domain: str
    dkim_domain: str = ""
    dkim_tokens: list[str] = field(default_factory=list)
    mail_from_domain: str = ""


def _reason(exc: Exception) -> str:
    """The error in one short line: SES's code and message, or botocore's words."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        message = " ".join(str(error.get("Message", "")).split())
        if message.startswith("<"):  # an HTML page: not SES answering, whatever is at that endpoint
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            return f"HTTP {status} from an endpoint that is not SES's API"
        return f"{error.get('Code', '')}: {message[:200]}".strip(": ")
    return " ".join(str(exc).split())[:200]


def _code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, botocore.exceptions.ClientError) else ""


class SesDoctor:
    """The SES checks of one workspace's settings, sharing one session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.identity = Identity(settings.sender_domain)
        self.session = None
        self.sesv2 = None

    def checks(self) -> list[Check]:
        found = self.session_checks()
        if self.sesv2 is None:
            return found
        # Each its own guard: an answer nobody foresaw spoils one line, not the rest.
        found += guarded("account", self.account)
        found += guarded("identity", self.sender)
        found += guarded("configuration-set", self.configuration_set)
        return found

    def session_checks(self) -> list[Check]:
        try:
            self.session = aws.session(self.settings.ses, MailerError)
        except MailerError as exc:
            return [problem("aws", exc.message, exc.hint or "")]
        found = [self._credentials()]
        self.sesv2 = self.session.client("sesv2", config=_CONFIG)
        endpoint = self.sesv2.meta.endpoint_url
        found.append(ok("region", f"{self.session.region_name} (SES at {endpoint})"))
        if found[0].status == "problem":
            self.sesv2 = None
        return found

    def _credentials(self) -> Check:
        try:
            credentials = self.session.get_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            return problem("credentials", f"the AWS credential chain failed: {_reason(exc)}")
        if credentials is None:
            error = aws.no_credentials(MailerError)
            return problem("credentials", error.message, error.hint or "")
        method = credentials.method
        if method in ("shared-credentials-file", "config-file"):
            where = f"profile {self.session.profile_name!r} ({method.replace('-', ' ')})"
        else:
            where = _METHODS.get(method, method)
        return ok("credentials", f"from {where}")

    def account(self) -> Check:
        """GetAccount: production access, sending enabled, enforcement, quota and rate."""
        try:
            answer = self.sesv2.get_account()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return problem("account", f"GetAccount failed: {_reason(exc)}",
                           "check the credentials and that they may call ses:GetAccount")
        quota = answer.get("SendQuota", {})
        limits = (f"{quota.get('Max24HourSend', 0):g} a day ({quota.get('SentLast24Hours', 0):g} sent in "
                  f"the last 24 hours), {quota.get('MaxSendRate', 0):g} a second")
        enforcement = answer.get("EnforcementStatus", "")
        if not answer.get("SendingEnabled", False):
            return problem("account", f"sending is disabled for this account (enforcement {enforcement})",
                           "see the SES console's account dashboard")
        if enforcement == "SHUTDOWN":
            return problem("account", "the account is shut down for sending", "contact AWS support")
        if not answer.get("ProductionAccessEnabled", False):
            return problem("account", f"in the SES sandbox: only verified recipients, {limits}",
                           "request production access in the SES console")
        if enforcement == "PROBATION":
            return warning("account", f"under review (PROBATION): {limits}",
                           "lower bounces and complaints before SES pauses sending")
        return ok("account", f"production access, sending enabled, {enforcement or 'HEALTHY'}: {limits}")

    def _get_identity(self, name: str) -> dict | None:
        try:
            return self.sesv2.get_email_identity(EmailIdentity=name)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "NotFoundException":
                return None
            raise

    def sender(self) -> list[Check]:
        """The sender address or its domain verified; DKIM; a custom MAIL FROM domain."""
        address, domain = self.settings.sender.address, self.settings.sender_domain
        try:
            by_address, by_domain = self._get_identity(address), self._get_identity(domain)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return [problem("identity", f"GetEmailIdentity failed: {_reason(exc)}")]
        verified = [name for name, found in ((domain, by_domain), (address, by_address))
                    if found and found.get("VerifiedForSendingStatus")]
        found: list[Check] = []
        if verified:
            found.append(ok("identity", f"{verified[0]} is verified for sending"))
        elif by_domain or by_address:
            status = (by_domain or by_address).get("VerificationStatus", "not verified")
            found.append(problem("identity", f"{domain if by_domain else address} is not verified for sending "
                                             f"(verification {status})",
                                 "finish the verification in the SES console (DNS records or the mail's link)"))
        else:
            found.append(problem("identity", f"neither {address} nor {domain} is an SES identity",
                                 f"create the identity {domain} in SES and publish its DKIM records"))
        found.append(self._dkim(by_domain, by_address))
        found.append(self._mail_from(by_domain or by_address))
        return found

    def _dkim(self, by_domain: dict | None, by_address: dict | None) -> Check:
        dkim = (by_domain or {}).get("DkimAttributes") or (by_address or {}).get("DkimAttributes") or {}
        self.identity.dkim_tokens = list(dkim.get("Tokens") or [])
        status = dkim.get("Status", "NOT_STARTED")
        if dkim.get("SigningEnabled") and status == "SUCCESS":
            self.identity.dkim_domain = self.identity.domain
            return ok("dkim", f"SES signs as {self.identity.domain} (DKIM {status})")
        if not dkim.get("SigningEnabled"):
            return problem("dkim", f"DKIM signing is off for {self.identity.domain}",
                           "enable Easy DKIM for the domain identity and publish its CNAME records")
        return problem("dkim", f"DKIM is {status} for {self.identity.domain}",
                       "publish the three CNAME records SES lists for the domain")

    def _mail_from(self, identity: dict | None) -> Check:
        attributes = (identity or {}).get("MailFromAttributes") or {}
        mail_from, status = attributes.get("MailFromDomain", ""), attributes.get("MailFromDomainStatus", "")
        if not mail_from:
            return warning("mail-from", "no custom MAIL FROM domain: the envelope sender is amazonses.com, "
                                        "so DMARC alignment rests on DKIM alone",
                           f"set a MAIL FROM domain such as bounce.{self.identity.domain} in SES")
        if status != "SUCCESS":
            return problem("mail-from", f"MAIL FROM domain {mail_from} is {status or 'not set up'}",
                           f"publish its MX (feedback-smtp.{self.session.region_name}.amazonses.com) "
                           "and SPF (include:amazonses.com) records")
        self.identity.mail_from_domain = mail_from
        return ok("mail-from", f"MAIL FROM domain {mail_from} is verified")

    def configuration_set(self) -> Check:
        """The configuration set exists and an enabled destination gets bounces and complaints."""
        name = self.settings.ses.configuration_set
        if not name:
            return warning("configuration-set", "no [ses] configuration_set: bounces and complaints reach "
                                                "mailer sync only through the identity's notifications "
                                                "(not checked)",
                           "set one with an SNS event destination for BOUNCE and COMPLAINT")
        try:
            self.sesv2.get_configuration_set(ConfigurationSetName=name)
            destinations = self.sesv2.get_configuration_set_event_destinations(
                ConfigurationSetName=name)["EventDestinations"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            # SESv2 says NotFoundException; SES v1 (and moto) ConfigurationSetDoesNotExist.
            if _code(exc) in ("NotFoundException", "ConfigurationSetDoesNotExist"):
                return problem("configuration-set", f"{name!r} does not exist in {self.session.region_name}",
                               "create it, or fix [ses] configuration_set: every send would fail")
            return problem("configuration-set", f"{name!r}: {_reason(exc)}")
        publishing = {event: [d["Name"] for d in destinations if d.get("Enabled")
                              and event in d.get("MatchingEventTypes", [])]
                      for event in ("BOUNCE", "COMPLAINT")}
        missing = [event.lower() + "s" for event, where in publishing.items() if not where]
        if missing:
            return problem("configuration-set", f"{name!r} publishes no {' or '.join(missing)}",
                           "add an enabled event destination (SNS to the feedback queue) for BOUNCE and COMPLAINT")
        where = sorted({n for names in publishing.values() for n in names})
        return ok("configuration-set", f"{name!r} publishes bounces and complaints to {', '.join(where)}")

    def queue(self) -> Check:
        """[feedback] queue_url answers and lets SNS deliver to it."""
        url = self.settings.feedback.queue_url
        if not url:
            return warning("feedback-queue", "no [feedback] queue_url: bounces and complaints are not "
                                             "applied to the list", "set it and run `mailer sync`")
        if self.session is None:
            return problem("feedback-queue", "no AWS session to reach the queue with")
        # The queue's own region, as `mailer sync` reads it, whatever [ses] region says.
        sqs = self.session.client("sqs", region_name=queue_region(url), config=_CONFIG)
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return problem("feedback-queue", f"{url} cannot be read: {_reason(exc)}",
                           "check [feedback] queue_url and sqs:GetQueueAttributes permission")
        waiting = attributes.get("ApproximateNumberOfMessages", "0")
        if not _allows_sns(attributes.get("Policy", "")):
            return problem("feedback-queue", f"reachable ({waiting} waiting), but its policy lets no SNS "
                                             "topic send to it, so no notification arrives",
                           "subscribe the queue to the topic, which adds the policy, or allow "
                           "sqs:SendMessage for sns.amazonaws.com")
        return ok("feedback-queue", f"reachable, {waiting} message(s) waiting, SNS may send to it")


def _allows_sns(policy: str) -> bool:
    """Whether a queue policy has an Allow statement letting SNS send messages."""
    try:
        statements = json.loads(policy).get("Statement", []) if policy else []
    except (ValueError, AttributeError):
        return False
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else principal
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if (statement.get("Effect") == "Allow"
                and ("sns.amazonaws.com" in services or "*" in services
                     or (isinstance(principal, dict) and principal.get("AWS") == "*"))
                and any(a in ("sqs:SendMessage", "sqs:*", "*") for a in actions)):
            return True
    return False
