"""SES's documented notifications, through moto's SNS and SQS, applied by `mailer sync`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.subscribers.addresses import parse_address
from mailer.errors import NotUnderstood
from mailer.feedback.notifications import parse
from mailer.store import Store
from mailer.tokens import SECRET_ENV, Signer

from .servers import SHUTDOWN_POLL, FaultyProxy

SAMPLES = Path(__file__).parent / "data" / "ses"
SECRET = "q" * 32
# Reports that carry no token need no store to be read.
SIGNER = Signer(SECRET.encode(), "0" * 32, "cloud-weekly.newsletter.example.com")
PEOPLE = ["jane@example.com", "mary@example.com", "richard@example.com", "recipient@example.com"]


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def sns_envelope(message: dict) -> str:
    """What SNS delivers to an SQS queue without raw delivery (as SNS's documentation shows it)."""
    return json.dumps({
        "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-feedback", "Message": json.dumps(message),
        "Timestamp": "2016-01-27T14:59:38.237Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    })


def transient(feedback_id: str, email: str) -> dict:
    """The documented bounce record, as SES sends it for a soft bounce."""
    body = sample("event-bounce")
    body["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull", feedbackId=feedback_id)
    body["bounce"]["bouncedRecipients"][0].update(emailAddress=email, status="4.2.2",
                                                   diagnosticCode="smtp; 452 4.2.2 mailbox full")
    body["mail"]["destination"] = [email]
    return body


# --- parsing: pure ---------------------------------------------------------------


@pytest.mark.parametrize("name, kind, effects", [
    ("notification-bounce-dsn", "Bounce", [("bounced", "jane@example.com")]),
    ("notification-bounce-no-dsn", "Bounce", [("bounced", "jane@example.com"), ("bounced", "richard@example.com")]),
    ("notification-complaint", "Complaint", [("complained", "richard@example.com")]),
    ("notification-delivery", "Delivery", [("delivered", "jane@example.com")]),
    ("event-bounce", "Bounce", [("bounced", "recipient@example.com")]),
    ("event-complaint", "Complaint", [("complained", "recipient@example.com")]),
    ("event-delivery", "Delivery", [("delivered", "recipient@example.com")]),
    ("event-subscription", "Subscription", [("unsubscribed", "recipient@example.com")]),
])
def test_the_documented_samples_parse_alike_raw_and_sns_wrapped(name, kind, effects):
    body = sample(name)
    for text in (json.dumps(body), sns_envelope(body)):
        parsed = parse(text, SIGNER)
        assert parsed.kind == kind
        assert [(item.kind, item.email_key) for item in parsed.items] == effects
        assert all(item.message_id == body["mail"]["messageId"] for item in parsed.items)
        assert all(len(item.key) == 64 and "@" not in item.key for item in parsed.items)


def test_a_bounce_and_a_complaint_sharing_a_feedback_id_are_two_reports():
    # AWS's own event samples give the bounce and the complaint the same feedbackId.
    bounce = parse(json.dumps(sample("event-bounce")), SIGNER).items[0]
    complaint = parse(json.dumps(sample("event-complaint")), SIGNER).items[0]
    assert bounce.key != complaint.key
    assert "550 5.1.1 user unknown" in bounce.reason


@pytest.mark.parametrize("body", [
    "", "not json", "[]", "null", "{}", '{"Type": "Notification", "Message": "{"}',
    '{"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe", "SubscribeURL": "https://x"}',
    '{"notificationType": "Bounce"}', '{"notificationType": "Bounce", "mail": {}, "bounce": {}}',
    '{"eventType": "Bounce", "mail": {"messageId": "m"}, "bounce": {"bounceType": "Permanent",'
    ' "feedbackId": "f", "bouncedRecipients": [{"emailAddress": 5}]}}',
    '{"eventType": "Teleport", "mail": {"messageId": "m"}}', "[" * 100_000,
])
def test_what_is_not_an_ses_notification_is_not_understood(body):
    with pytest.raises(NotUnderstood):
        parse(body, SIGNER)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10)
    | st.sampled_from(["Bounce", "Complaint", "Delivery", "Permanent", "Notification", "mail"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["eventType", "notificationType", "mail", "bounce", "complaint", "delivery",
                         "messageId", "feedbackId", "bounceType", "bouncedRecipients", "emailAddress",
                         "complainedRecipients", "recipients", "Type", "Message"]), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_either_parses_or_is_not_understood(value):
    try:
        parse(json.dumps(value), SIGNER)
    except NotUnderstood:
        pass


def test_open_click_and_send_events_are_read_and_ignored():
    body = sample("event-delivery")
    body["eventType"] = "Open"
    assert parse(json.dumps(body), SIGNER).items == []


# --- sync against moto's SNS and SQS --------------------------------------------------


@pytest.fixture
def feedback_queue(aws_env):
    """An SQS queue fed by two SNS topics: one wrapping messages, one with raw delivery.

    Returns (queue URL, publish(*messages, raw=False), send_raw(text)); publish
    sends its messages in order, ten to an SNS PublishBatch call."""
    sqs = boto3.client("sqs", endpoint_url=aws_env.url)
    sns = boto3.client("sns", endpoint_url=aws_env.url)
    url = sqs.create_queue(QueueName="ses-feedback", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topics = {}
    for raw in (False, True):
        topic = sns.create_topic(Name=f"ses-feedback-{'raw' if raw else 'wrapped'}")["TopicArn"]
        subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
        if raw:
            sns.set_subscription_attributes(SubscriptionArn=subscription, AttributeName="RawMessageDelivery",
                                            AttributeValue="true")
        topics[raw] = topic

    def publish(*messages: dict, raw: bool = False) -> None:
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(n), "Message": json.dumps(message)}
                       for n, message in enumerate(messages[start:start + 10])]
            answer = sns.publish_batch(TopicArn=topics[raw], PublishBatchRequestEntries=entries)
            assert not answer.get("Failed"), answer["Failed"]

    def send_raw(text: str) -> None:
        sqs.send_message(QueueUrl=url, MessageBody=text)

    return url, publish, send_raw


@pytest.fixture
def people(workspace, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with Store.open(workspace.store_path) as store:
        for email in PEOPLE:
            store.add(parse_address(email), actor="test")
    return workspace.store_path


def statuses(store_path) -> dict[str, str]:
    with Store.open(store_path) as store:
        return {s.email: s.status for s in store.subscribers()}


def histories(store_path) -> dict[str, list[str]]:
    with Store.open(store_path) as store:
        return {s.email: [e.kind for e in store.history(s)] for s in store.subscribers()}


def queue_depth(aws_env, url) -> int:
    attributes = boto3.client("sqs", endpoint_url=aws_env.url).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def until_empty(aws_env, url, sync_once, attempts: int = 60) -> None:
    """Call `sync_once` until the queue is empty, waiting a moment between runs."""
    for _ in range(attempts):
        sync_once()
        if queue_depth(aws_env, url) == 0:
            return
        time.sleep(0.5)
    assert queue_depth(aws_env, url) == 0


def test_sync_applies_the_documented_notifications_in_both_shapes(feedback_queue, people, run_mailer, aws_env):
    url, publish, _ = feedback_queue
    for n, name in enumerate(["notification-bounce-dsn", "notification-complaint", "notification-delivery",
                              "event-bounce", "event-complaint", "event-delivery", "event-subscription"]):
        publish(sample(name), raw=bool(n % 2))
    result = run_mailer("sync", "--queue-url", url)
    assert result.exit_code == 0, result.output
    assert "Read 7 message(s): 2 bounce, 2 complaint, 2 delivery, 1 subscription." in result.output
    assert "Subscribers changed: 2 bounced, 2 complained." in result.output
    assert statuses(people) == {"jane@example.com": "bounced", "mary@example.com": "active",
                                "richard@example.com": "complained", "recipient@example.com": "complained"}
    assert histories(people)["recipient@example.com"] == ["subscribed", "bounced", "complained"]
    assert queue_depth(aws_env, url) == 0


def test_sqs_delivering_a_message_twice_changes_nothing_the_second_time(feedback_queue, people, run_mailer):
    url, publish, _ = feedback_queue
    publish(sample("notification-bounce-no-dsn"))
    assert run_mailer("sync", "--queue-url", url).exit_code == 0
    before = histories(people)
    publish(sample("notification-bounce-no-dsn"), raw=True)
    publish(sample("notification-bounce-no-dsn"))
    result = run_mailer("sync", "--queue-url", url)
    assert "Already applied before (delivered twice by SQS): 4." in result.output
    assert histories(people) == before


def test_transient_bounces_in_a_row_mark_an_address_bounced_and_a_delivery_resets_them(
        feedback_queue, people, run_mailer, workspace_dir):
    url, publish, _ = feedback_queue
    for n in range(2):
        publish(transient(f"soft-{n}", "mary@example.com"))
    delivered = sample("event-delivery")
    delivered["delivery"]["recipients"] = ["mary@example.com"]
    publish(delivered)
    run_mailer("sync", "--queue-url", url)
    for n in range(2, 4):
        publish(transient(f"soft-{n}", "mary@example.com"))
    run_mailer("sync", "--queue-url", url)
    assert statuses(people)["mary@example.com"] == "active"  # two in a row since the delivery
    publish(transient("soft-4", "mary@example.com"))
    result = run_mailer("sync", "--queue-url", url)
    assert "Subscribers changed: 1 bounced." in result.output
    assert statuses(people)["mary@example.com"] == "bounced"
    assert histories(people)["mary@example.com"].count("soft-bounced") == 5


def test_a_message_sync_cannot_understand_is_kept_reported_and_the_rest_applied(
        feedback_queue, people, run_mailer, aws_env):
    url, publish, send_raw = feedback_queue
    send_raw("this is not an SES notification")
    publish(sample("notification-bounce-dsn"))
    send_raw(json.dumps({"notificationType": "Bounce", "mail": {"messageId": "x"}}))
    result = run_mailer("sync", "--queue-url", url)
    assert result.exit_code == 0
    assert "Kept in the queue, not understood: 2." in result.output
    assert "the message is not JSON" in result.output
    assert statuses(people)["jane@example.com"] == "bounced"
    assert queue_depth(aws_env, url) == 2  # left for the dead-letter queue


def test_a_reply_to_the_mailto_address_unsubscribes_by_its_token(feedback_queue, people, run_mailer, workspace):
    url, publish, _ = feedback_queue
    with Store.open(people) as store:
        mary = store.require(parse_address("mary@example.com"))
        token = store.signer(SECRET.encode(), workspace.settings.list_id).issue(mary.id, 0)
    reply = sample("received-sns-action")
    reply["mail"]["commonHeaders"]["subject"] = f"Re: unsubscribe {token}"
    publish(reply)
    publish(sample("received-sns-action"))  # a mail without a token: kept for a person
    result = run_mailer("sync", "--queue-url", url)
    assert statuses(people)["mary@example.com"] == "unsubscribed"
    assert "without a valid token, from sender@example.com" in result.output


def test_a_reply_with_a_token_of_another_store_unsubscribes_nobody(feedback_queue, people, run_mailer,
                                                                   tmp_path):
    url, publish, _ = feedback_queue
    # Another store sharing the secret and the list: its mary has the same id as ours.
    with Store.open(tmp_path / "elsewhere.db") as elsewhere:
        for email in PEOPLE:
            elsewhere.add(parse_address(email), actor="test")
        mary = elsewhere.require(parse_address("mary@example.com"))
        token = elsewhere.signer(SECRET.encode(), "cloud-weekly.newsletter.example.com").issue(mary.id, 1)
    reply = sample("received-sns-action")
    reply["mail"]["commonHeaders"]["subject"] = f"Re: unsubscribe {token}"
    publish(reply)
    result = run_mailer("sync", "--queue-url", url)
    assert "without a valid token, from sender@example.com" in result.output
    assert set(statuses(people).values()) == {"active"}


def test_sync_without_a_queue_or_with_a_wrong_one_ends_in_one_line(aws_env, people, run_mailer):
    result = run_mailer("sync")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no queue to read (pass --queue-url or set [feedback] queue_url)"
    result = run_mailer("sync", "--queue-url", f"{aws_env.url}/123456789012/missing")
    assert result.exit_code == 1
    assert result.output.startswith("Error: SQS refused receive_message:")
    assert len(result.output.strip().splitlines()) == 1


def test_a_sync_killed_midway_loses_nothing_and_applies_nothing_twice(feedback_queue, people, aws_env, workspace_dir):
    url, publish, _ = feedback_queue
    count = 60
    emails = [f"soft{n}@example.com" for n in range(count)]
    with Store.open(people) as store:
        for email in emails:
            store.add(parse_address(email), actor="test")
    config = workspace_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[feedback]\ntransient_bounce_limit = 1000\n",
                      encoding="utf-8")
    for raw in (False, True):  # the first and third report of each address wrapped, the second raw
        publish(*(transient(f"fb-{n}-{k}", email) for n, email in enumerate(emails)
                  for k in range(3) if bool(k % 2) == raw), raw=raw)
    # What the killed run received but never deleted comes back after the
    # visibility timeout: one second here, so that running again finds it.
    sqs = boto3.client("sqs", endpoint_url=aws_env.url)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    env = {**os.environ, "AWS_ENDPOINT_URL": aws_env.url, SECRET_ENV: SECRET}
    command = [sys.executable, "-m", "mailer", "--workspace", str(workspace_dir), "sync", "--queue-url", url]
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while killed.poll() is None:
            with Store.open(people) as store:
                if sum(store.transient_bounces(s.id) for s in store.subscribers()) >= count:
                    break
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait()
    # Back to a timeout the runs below outlast: a message must not come back
    # while the run that received it is still at work on the batch.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})

    def sync_again():
        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr

    until_empty(aws_env, url, sync_again, attempts=120)  # as cron would
    with Store.open(people) as store:
        for email in emails:
            subscriber = store.require(parse_address(email))
            assert store.transient_bounces(subscriber.id) == 3, email
            assert [e.kind for e in store.history(subscriber)].count("soft-bounced") == 3, email
        assert store.counts()["active"] == len(PEOPLE) + count


# --- end to end ----------------------------------------------------------------------


def test_an_unsubscribe_and_a_bounce_keep_both_readers_out_of_the_next_issue(
        ses, feedback_queue, workspace, workspace_dir, run_mailer, monkeypatch):
    """Send through SES (moto), unsubscribe one reader on the page, bounce another
    through SQS with SES's own message id, deliver a third; the next issue reaches
    only the third and the fourth."""
    import http.client
    import re
    import threading

    from mailer.web.unsubscribe import create_app
    from mailer.web.unsubscribe_server import make_server

    url, publish, _ = feedback_queue
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = workspace_dir / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('kind = "outbox"', 'kind = "ses"')
                      + f'\n[feedback]\nqueue_url = "{url}"\n', encoding="utf-8")
    issue = (workspace_dir / "issues" / "2024-26.md").read_text(encoding="utf-8")
    (workspace_dir / "issues" / "2024-27.md").write_text(
        issue.replace("2024 年第二十六期", "2024 年第二十七期", 1), encoding="utf-8")
    readers = ["ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com"]
    with Store.open(workspace.store_path) as store:
        for email in readers:
            store.add(parse_address(email), actor="test")

    # moto's SES allows one message a second (MaxSendRate); moto never throttles.
    result = run_mailer("send-issue", "2024-26", "--yes", "--rate", "1000")
    assert result.exit_code == 0, result.output
    first = {m["destinations"]["ToAddresses"][0] if isinstance(m["destinations"], dict)
             else m["destinations"][0]: m for m in ses.raw_messages()}
    assert sorted(first) == readers

    # Ann: the one-click POST her mail client makes to her List-Unsubscribe URL.
    ann = next(msg for msg in ses.parsed_messages() if msg["To"].addresses[0].addr_spec == "ann@example.com")
    target = re.search(r"<https://[^/>]+(/[^>]+)>", str(ann["List-Unsubscribe"])).group(1)
    httpd = make_server(create_app(workspace_dir), "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
        conn.request("POST", target, body=b"List-Unsubscribe=One-Click",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        httpd.shutdown()
        httpd.server_close()

    # Bob bounces and Cy's message is delivered: SES's documented records, about their messages.
    bounce = sample("event-bounce")
    bounce["mail"]["messageId"] = first["bob@example.com"]["id"]
    bounce["bounce"]["bouncedRecipients"][0]["emailAddress"] = "bob@example.com"
    publish(bounce)
    delivery = sample("notification-delivery")
    delivery["mail"]["messageId"] = first["cy@example.com"]["id"]
    delivery["delivery"]["recipients"] = ["cy@example.com"]
    publish(delivery, raw=True)
    result = run_mailer("sync")
    assert result.exit_code == 0, result.output

    status = json.loads(run_mailer("status", "2024-26", "--json").output)
    assert (status["sent"], status["bounced"], status["delivered"], status["unsubscribed"]) == (4, 1, 1, 1)
    assert status["bounced_rate"] == 0.25
    text = run_mailer("status", "2024-26").output
    assert "bounces: 1 (25.00% of sent; SES reviews an account at 5.0%)  ABOVE the review threshold" in text

    before = len(ses.raw_messages())
    result = run_mailer("send-issue", "2024-27", "--yes", "--rate", "1000")
    assert result.exit_code == 0, result.output
    second = ses.parsed_messages()[before:]
    assert sorted(m["To"].addresses[0].addr_spec for m in second) == ["cy@example.com", "dee@example.com"]
    assert all("第二十七期" in str(m["Subject"]) for m in second)


def test_a_sync_that_cannot_delete_after_the_commit_applies_nothing_twice_when_run_again(
        feedback_queue, people, run_mailer, aws_env, monkeypatch):
    url, publish, _ = feedback_queue
    boto3.client("sqs", endpoint_url=aws_env.url).set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    publish(sample("notification-bounce-no-dsn"))
    publish(transient("soft-once", "mary@example.com"), raw=True)
    with FaultyProxy(aws_env.url, fail_deletes=True) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = run_mailer("sync", "--queue-url", url)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: SQS refused delete_message: InternalFailure")
    # moto hands out messages in the order they arrived: the first one's bounces
    # are committed, and its failed delete stopped the run before the second.
    applied = histories(people)
    assert applied["jane@example.com"] == applied["richard@example.com"] == ["subscribed", "bounced"]
    assert applied["mary@example.com"] == ["subscribed"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.url)

    def sync_again():
        result = run_mailer("sync", "--queue-url", url)
        assert result.exit_code == 0, result.output

    until_empty(aws_env, url, sync_again)  # the undeleted messages come back and go
    final = histories(people)
    assert final["jane@example.com"] == ["subscribed", "bounced"]
    assert final["richard@example.com"] == ["subscribed", "bounced"]
    assert final["mary@example.com"] == ["subscribed", "soft-bounced"]
