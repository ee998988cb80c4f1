"""The SQS queue that SES's notifications reach through SNS, read with boto3.

A small adapter at the edge, like the transports: `mailer.feedback.sync`
declares the `Queue` it needs (receive, delete) and knows nothing of AWS. It
is not a transport — transports send mail, and mailer/send/transports/ is
where the sending rules live — so it lives with the feedback it reads.

The client starts from the session `mailer.aws` makes, on the [ses] profile
and region and the standard AWS chain (``AWS_ENDPOINT_URL_SQS`` …); a queue
URL of the form ``https://sqs.<region>.amazonaws.com/…`` names its own
region, which wins.
"""

from __future__ import annotations

import re

import botocore.config
import botocore.exceptions

from .. import aws
from ..config import SesSettings
from ..errors import QueueError
from .sync import QueueMessage

_REGION_IN_URL = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


def queue_region(url: str) -> str | None:
    """The region a queue URL of the form ``https://sqs.<region>.amazonaws.com/…`` names."""
    match = _REGION_IN_URL.match(url)
    return match.group(1) if match else None


class SqsQueue:
    """One SQS queue, by URL."""

    def __init__(self, url: str, settings: SesSettings) -> None:
        self.url = url
        session = aws.session(settings, QueueError, region=queue_region(url), purpose="for the queue")
        # Long polls wait up to 20 s; the read timeout must outlast them.
        config = botocore.config.Config(read_timeout=30, connect_timeout=10,
                                        retries={"mode": "standard", "total_max_attempts": 3})
        self._client = session.client("sqs", config=config)

    def receive(self, wait_seconds: int) -> list[QueueMessage]:
        answer = self._call("receive_message", QueueUrl=self.url, MaxNumberOfMessages=10,
                            WaitTimeSeconds=wait_seconds)
        return [QueueMessage(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""))
                for m in answer.get("Messages", [])]

    def delete(self, message: QueueMessage) -> None:
        self._call("delete_message", QueueUrl=self.url, ReceiptHandle=message.receipt)

    def close(self) -> None:
        self._client.close()

    def _call(self, operation: str, **kwargs):
        try:
            return getattr(self._client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = " ".join(str(error.get("Message", "") or code).split())
            hint = "check [feedback] queue_url" if "NonExistentQueue" in code or "QueueDoesNotExist" in code else None
            raise QueueError(f"SQS refused {operation}: {code}: {message}", hint=hint) from None
        except botocore.exceptions.NoCredentialsError:
            raise aws.no_credentials(QueueError) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise QueueError(f"cannot reach SQS: {exc}") from None
