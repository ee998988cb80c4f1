"""`mailer doctor` on the `ses` transport: moto for SQS and what moto's SESv2 has, and a
local SESv2 endpoint answering SES's documented JSON for the rest (GetAccount, DKIM
tokens, MAIL FROM, event destinations). DNS comes from a test DNS server."""

from __future__ import annotations

import boto3
import pytest

from tests.doctor_servers import ACCOUNT, DOMAIN, TOKENS, TOPIC, domain_identity, lines, make_queue

def test_doctor_finds_a_ready_ses_setup_all_ok(run_mailer, healthy_ses):
    result = run_mailer("doctor")
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert all(line.startswith("ok ") for line in found.values()), result.output
    assert found["credentials"] == "ok credentials: from environment variables (AWS_ACCESS_KEY_ID)"
    assert found["region"] == f"ok region: us-east-1 (SES at {healthy_ses.url})"
    assert found["account"] == ("ok account: production access, sending enabled, HEALTHY: 50000 a day "
                                "(120 sent in the last 24 hours), 14 a second")
    assert found["identity"] == f"ok identity: {DOMAIN} is verified for sending"
    assert found["dkim"] == f"ok dkim: SES signs as {DOMAIN} (DKIM SUCCESS)"
    assert found["mail-from"] == f"ok mail-from: MAIL FROM domain bounce.{DOMAIN} is verified"
    assert found["configuration-set"] == "ok configuration-set: 'newsletter' publishes bounces and complaints to to-sns"
    assert found["feedback-queue"] == "ok feedback-queue: reachable, 0 message(s) waiting, SNS may send to it"
    assert found["spf"] == f"ok spf: bounce.{DOMAIN} includes amazonses.com"
    assert found["dmarc"] == f"ok dmarc: p=quarantine at _dmarc.{DOMAIN}, aligned through DKIM and SPF"
    assert found["dkim-dns"] == "ok dkim-dns: 3 DKIM CNAMEs resolve to amazonses.com"


def test_doctor_names_the_profile_the_credentials_come_from(run_mailer, healthy_ses, doctor_settings,
                                                            tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text("[newsletter]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    doctor_settings("ses", extra='[ses]\nprofile = "newsletter"\n')
    result = run_mailer("doctor")
    assert lines(result)["credentials"] == ("ok credentials: from profile 'newsletter' "
                                            "(shared credentials file)")


def test_doctor_reports_no_credentials(run_mailer, healthy_ses, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["credentials"] == ("problem credentials: no AWS credentials found (set AWS_PROFILE or "
                                            "AWS_ACCESS_KEY_ID, or [ses] profile)")
    assert "account" not in lines(result)


def test_doctor_reports_a_profile_that_does_not_exist(run_mailer, healthy_ses, doctor_settings, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    doctor_settings("ses", extra='[ses]\nprofile = "nosuch"\n')
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["aws"] == "problem aws: AWS profile 'nosuch' not found (check [ses] profile or ~/.aws/config)"


@pytest.mark.parametrize("changes, exit_code, line", [
    ({"ProductionAccessEnabled": False,
      "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}}, 1,
     "problem account: in the SES sandbox: only verified recipients, 200 a day (0 sent in the last 24 hours), "
     "1 a second (request production access in the SES console)"),
    ({"SendingEnabled": False, "EnforcementStatus": "PROBATION"}, 1,
     "problem account: sending is disabled for this account (enforcement PROBATION) (see the SES console's "
     "account dashboard)"),
    ({"EnforcementStatus": "SHUTDOWN"}, 1,
     "problem account: the account is shut down for sending (contact AWS support)"),
    ({"EnforcementStatus": "PROBATION"}, 0,
     "warning account: under review (PROBATION): 50000 a day (120 sent in the last 24 hours), 14 a second "
     "(lower bounces and complaints before SES pauses sending)"),
], ids=["sandbox", "paused", "shut-down", "probation"])
def test_doctor_reports_the_account_state(run_mailer, healthy_ses, changes, exit_code, line):
    healthy_ses.answers["/v2/email/account"] = dict(ACCOUNT, **changes)
    result = run_mailer("doctor")
    assert result.exit_code == exit_code, result.output
    assert lines(result)["account"] == line


def test_doctor_reports_dkim_that_is_not_verified(run_mailer, healthy_ses):
    healthy_ses.answers[f"/v2/email/identities/{DOMAIN}"] = domain_identity(DkimAttributes={
        "SigningEnabled": True, "Status": "PENDING", "Tokens": TOKENS})
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["dkim"] == (f"problem dkim: DKIM is PENDING for {DOMAIN} (publish the three CNAME "
                                     "records SES lists for the domain)")


def test_doctor_warns_without_a_custom_mail_from_domain(run_mailer, healthy_ses):
    healthy_ses.answers[f"/v2/email/identities/{DOMAIN}"] = domain_identity(MailFromAttributes=None)
    result = run_mailer("doctor")
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert found["mail-from"].startswith("warning mail-from: no custom MAIL FROM domain: the envelope sender is "
                                         "amazonses.com, so DMARC alignment rests on DKIM alone")
    assert found["spf"] == f"ok spf: {DOMAIN} includes amazonses.com"
    assert found["dmarc"] == f"ok dmarc: p=quarantine at _dmarc.{DOMAIN}, aligned through DKIM"


def test_doctor_reports_a_mail_from_domain_not_yet_verified(run_mailer, healthy_ses):
    healthy_ses.answers[f"/v2/email/identities/{DOMAIN}"] = domain_identity(MailFromAttributes={
        "MailFromDomain": f"bounce.{DOMAIN}", "MailFromDomainStatus": "PENDING",
        "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"})
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["mail-from"] == (
        f"problem mail-from: MAIL FROM domain bounce.{DOMAIN} is PENDING (publish its MX "
        "(feedback-smtp.us-east-1.amazonses.com) and SPF (include:amazonses.com) records)")


def test_doctor_reports_a_configuration_set_publishing_no_bounces(run_mailer, healthy_ses):
    healthy_ses.answers["/v2/email/configuration-sets/newsletter/event-destinations"] = {"EventDestinations": [{
        "Name": "to-sns", "Enabled": True, "MatchingEventTypes": ["COMPLAINT", "DELIVERY"],
        "SnsDestination": {"TopicArn": TOPIC}}, {
        "Name": "paused", "Enabled": False, "MatchingEventTypes": ["BOUNCE"],
        "SnsDestination": {"TopicArn": TOPIC}}]}
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["configuration-set"] == (
        "problem configuration-set: 'newsletter' publishes no bounces (add an enabled event destination "
        "(SNS to the feedback queue) for BOUNCE and COMPLAINT)")


def test_doctor_reports_a_queue_no_topic_may_send_to(run_mailer, healthy_ses, doctor_settings):
    boto3.client("sqs").delete_queue(QueueUrl=make_queue())
    queue = make_queue(policy=None)
    doctor_settings("ses", extra=f'[ses]\nconfiguration_set = "newsletter"\n\n[feedback]\nqueue_url = "{queue}"\n')
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["feedback-queue"].startswith(
        "problem feedback-queue: reachable (0 waiting), but its policy lets no SNS topic send to it")


def test_doctor_reports_a_queue_that_does_not_exist(run_mailer, healthy_ses, doctor_settings, aws_env):
    queue = f"{aws_env.url}/123456789012/no-such-queue"
    doctor_settings("ses", extra=f'[ses]\nconfiguration_set = "newsletter"\n\n[feedback]\nqueue_url = "{queue}"\n')
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["feedback-queue"].startswith(f"problem feedback-queue: {queue} cannot be read: ")


# moto's own SESv2 (no local endpoint): identities and configuration sets as moto keeps them.

def test_doctor_reports_a_sender_ses_does_not_know(run_mailer, aws_env, nameserver, doctor_settings):
    doctor_settings("ses")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["identity"] == (
        f"problem identity: neither weekly@{DOMAIN} nor {DOMAIN} is an SES identity (create the identity "
        f"{DOMAIN} in SES and publish its DKIM records)")


def test_doctor_reports_an_identity_not_yet_verified(run_mailer, aws_env, nameserver, doctor_settings):
    boto3.client("sesv2").create_email_identity(EmailIdentity=DOMAIN)
    doctor_settings("ses")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["identity"].startswith(f"problem identity: {DOMAIN} is not verified for sending (")
    assert lines(result)["dkim"] == (f"problem dkim: DKIM signing is off for {DOMAIN} (enable Easy DKIM for the "
                                     "domain identity and publish its CNAME records)")


def test_doctor_reports_a_configuration_set_that_does_not_exist(run_mailer, aws_env, nameserver, doctor_settings):
    boto3.client("sesv2").create_configuration_set(ConfigurationSetName="other")
    doctor_settings("ses", extra='[ses]\nconfiguration_set = "newsletter"\n')
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["configuration-set"] == (
        "problem configuration-set: 'newsletter' does not exist in us-east-1 (create it, or fix [ses] "
        "configuration_set: every send would fail)")


def test_doctor_turns_an_answer_it_cannot_read_into_that_checks_line(run_mailer, healthy_ses):
    healthy_ses.answers["/v2/email/account"] = dict(ACCOUNT, SendQuota={"Max24HourSend": "lots"})
    result = run_mailer("doctor")
    assert result.exit_code == 1
    found = lines(result)
    assert found["account"].startswith("problem account: could not be checked: ")
    assert found["identity"] == f"ok identity: {DOMAIN} is verified for sending"
