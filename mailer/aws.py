"""The boto3 session that SES sending and the SQS feedback queue both start from.

The only module that imports boto3 itself; the SES transport and the SQS
queue build their clients on the session made here, and read botocore's
exceptions and config for the calls they make. Credentials, region and
endpoint come from the standard AWS chain (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_SESV2``,
``AWS_ENDPOINT_URL_SQS`` …) with the ``[ses]`` profile and region on top.

Both callers are adapters, and an AWS setup they cannot start from ends each
in its own error type — a send stops with an `AccountSendError`, a sync with
a `QueueError` — so the caller passes the type to raise; the words are the
same for both.
"""

from __future__ import annotations

from typing import TypeVar

import boto3
import botocore.exceptions

from .config import SesSettings
from .errors import MailerError

E = TypeVar("E", bound=MailerError)


def session(settings: SesSettings, error: type[MailerError], *, region: str | None = None,
            purpose: str = "") -> boto3.session.Session:
    """A session on ``[ses] profile`` in `region`, else ``[ses] region``, else the AWS chain's.

    A profile that does not exist, or no region from anywhere, is `error`;
    `purpose` ("for the queue") says in that message what needed the region.
    """
    try:
        found = boto3.session.Session(profile_name=settings.profile or None,
                                      region_name=region or settings.region or None)
    except botocore.exceptions.ProfileNotFound:
        raise error(f"AWS profile {settings.profile!r} not found",
                    hint="check [ses] profile or ~/.aws/config") from None
    if not found.region_name:
        raise error(" ".join(("no AWS region", purpose)).strip(), hint="set [ses] region or AWS_REGION")
    return found


def no_credentials(error: type[E]) -> E:
    """The `error` for botocore's NoCredentialsError: nothing in the chain had any."""
    return error("no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID, or [ses] profile")
