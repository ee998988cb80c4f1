"""Amazon SES through boto3: SESv2 SendEmail with raw MIME content.

The client starts from the session `mailer.aws` makes (profile, region and
endpoint from ``[ses]`` and the AWS chain); what SES answers is turned here
into the send errors the engine acts on.

botocore's own retries are off for sending. When a connection drops after
the request went out, botocore would silently send it again and the reader
would get the issue twice; the send engine (`mailer.send.engine`) retries
itself, where it knows what is safe: a 429 or 5xx answer means SES did not
take the message, a lost answer means nobody knows.
"""

from __future__ import annotations

import re

import botocore.config
import botocore.exceptions

from ... import aws
from ...config import SesSettings
from ...errors import (
    AccountSendError,
    PermanentSendError,
    QuotaExceeded,
    RetryableSendError,
    Throttled,
    UnknownOutcome,
)
from ..quota import Quota

_THROTTLE_CODES = {"TooManyRequestsException", "Throttling", "ThrottlingException"}
_ACCOUNT_CODES = {
    "AccountSuspendedException": "the SES account is suspended",
    "SendingPausedException": "sending is paused for this SES account or configuration set",
    "MailFromDomainNotVerifiedException": "the MAIL FROM domain is not verified in SES",
    "NotFoundException": "SES could not find a resource the send names (the configuration set?)",
    "AccessDeniedException": "the AWS credentials may not send with SES",
    "UnrecognizedClientException": "the AWS credentials are not valid",
    "InvalidClientTokenId": "the AWS credentials are not valid",
    "SignatureDoesNotMatch": "the AWS secret key is wrong",
    "ExpiredTokenException": "the AWS credentials have expired",
}


class SesTransport:
    """One SESv2 client shared by all workers, with a connection per worker."""

    name = "ses"

    def __init__(self, settings: SesSettings, concurrency: int) -> None:
        self.settings = settings
        session = aws.session(settings, AccountSendError)
        self.region = session.region_name
        send_config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=max(concurrency, 1),
            connect_timeout=10,
            read_timeout=30,
        )
        self._client = session.client("sesv2", config=send_config)
        # Reading the quota is harmless to repeat, so it keeps botocore's retries.
        self._quota_client = session.client(
            "ses", config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}))

    def describe(self) -> str:
        return f"ses ({self.region})"

    def quota(self) -> Quota:
        """The account's current limits (SES GetSendQuota)."""
        try:
            answer = self._quota_client.get_send_quota()
        except botocore.exceptions.ClientError as exc:
            raise _classify(exc) from None
        except botocore.exceptions.NoCredentialsError:
            raise aws.no_credentials(AccountSendError) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AccountSendError(f"cannot reach SES: {exc}") from None
        return Quota(float(answer.get("MaxSendRate", 1)), float(answer.get("Max24HourSend", -1)),
                     float(answer.get("SentLast24Hours", 0)))

    def send(self, raw: bytes, sender: str, recipient: str) -> str:
        request = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self.settings.configuration_set:
            request["ConfigurationSetName"] = self.settings.configuration_set
        try:
            answer = self._client.send_email(**request)
        except botocore.exceptions.ClientError as exc:
            raise _classify(exc, sender) from None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as exc:
            # No connection was made, so nothing was sent.
            raise RetryableSendError(f"cannot connect to SES: {exc}") from None
        except botocore.exceptions.NoCredentialsError:
            raise aws.no_credentials(AccountSendError) from None
        except botocore.exceptions.BotoCoreError as exc:
            # The request may have reached SES before the answer was lost.
            raise UnknownOutcome(f"no answer from SES: {exc}") from None
        return str(answer.get("MessageId", ""))

    def close(self) -> None:
        self._client.close()
        self._quota_client.close()


def _classify(exc: botocore.exceptions.ClientError, sender: str = ""):
    """The SendError that an SES error answer means."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _THROTTLE_CODES and "quota" in message.lower():
        return QuotaExceeded(f"SES: {message}", hint="the 24-hour quota refills over the day; resume later")
    if code in _THROTTLE_CODES or status == 429:
        return Throttled(f"SES throttled the send: {message}")
    if code == "LimitExceededException":
        return QuotaExceeded(f"SES: {message}", hint="the 24-hour quota refills over the day; resume later")
    if code in _ACCOUNT_CODES:
        return AccountSendError(f"{_ACCOUNT_CODES[code]}: {message}")
    if code == "MessageRejected" and "did not have authority to send from" in message.lower():
        return AccountSendError(f"SES may not send from this sender: {message}",
                                hint="verify the address or its domain in SES")
    if code == "MessageRejected" and "not verified" in message.lower():
        unverified = re.findall(r"[^\s,:;<>]+@[^\s,:;<>]+", message)
        if not unverified or sender.lower() in (a.lower().rstrip(".") for a in unverified):
            return AccountSendError(f"SES has not verified the sender: {message}",
                                    hint="verify the address or its domain in SES")
        return PermanentSendError(f"SES refused the recipient: {message}")
    if status >= 500:
        return RetryableSendError(f"SES answered {status}: {message}")
    return PermanentSendError(f"SES refused the message: {code}: {message}")
