"""`mailer doctor`'s DNS checks: SPF, DMARC and DKIM records served by a DNS server the
tests start on 127.0.0.1, for a sender domain set up right and one set up wrong."""

from __future__ import annotations

from tests.doctor_servers import DOMAIN, TOKENS, domain_identity, good_zone, lines

BROKEN = "broken.example.org"


def broken_zone() -> dict:
    """The mistakes real setups have: SPF for another provider, no DMARC, DKIM half published."""
    return {
        (BROKEN, "TXT"): ["v=spf1 include:_spf.google.com ~all", "google-site-verification=abc"],
        (f"mail.{BROKEN}", "TXT"): ["v=spf1 include:_spf.google.com ~all"],
        (f"{TOKENS[0]}._domainkey.{BROKEN}", "CNAME"): [f"{TOKENS[0]}.dkim.amazonses.com."],
        (f"{TOKENS[1]}._domainkey.{BROKEN}", "CNAME"): ["selector1.mail.protection.outlook.com."],
    }


def use_broken_domain(healthy_ses, nameserver, doctor_settings):
    healthy_ses.answers[f"/v2/email/identities/{BROKEN}"] = domain_identity(MailFromAttributes={
        "MailFromDomain": f"mail.{BROKEN}", "MailFromDomainStatus": "SUCCESS",
        "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"})
    nameserver.records.update(broken_zone())
    doctor_settings("ses", sender=f"weekly@{BROKEN}")


def test_doctor_reports_each_broken_record(run_mailer, healthy_ses, nameserver, doctor_settings):
    use_broken_domain(healthy_ses, nameserver, doctor_settings)
    result = run_mailer("doctor")
    assert result.exit_code == 1
    found = lines(result)
    assert found["spf"] == (f"problem spf: the MAIL FROM domain mail.{BROKEN} does not include amazonses.com: "
                            "v=spf1 include:_spf.google.com ~all (add include:amazonses.com to it)")
    assert found["dmarc"] == (f"problem dmarc: no DMARC record at _dmarc.{BROKEN} (Gmail and Yahoo require one "
                              "of bulk senders; start with v=DMARC1; p=none)")
    assert found["dkim-dns"] == (
        f"problem dkim-dns: 2 of 3 DKIM CNAME(s) wrong: {TOKENS[1]}._domainkey.{BROKEN} -> "
        f"selector1.mail.protection.outlook.com; {TOKENS[2]}._domainkey.{BROKEN} -> nothing "
        "(publish each as a CNAME to <token>.dkim.amazonses.com)")


def test_doctor_reports_a_dmarc_record_nothing_aligns_with(run_mailer, healthy_ses):
    healthy_ses.answers[f"/v2/email/identities/{DOMAIN}"] = domain_identity(
        MailFromAttributes=None, DkimAttributes={"SigningEnabled": False, "Status": "NOT_STARTED"})
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["dmarc"] == (
        f"problem dmarc: p=quarantine at _dmarc.{DOMAIN}, but neither DKIM nor SPF aligns with {DOMAIN} "
        "(sign with DKIM as the sender's domain (Easy DKIM on the domain identity))")


def test_doctor_holds_strict_dmarc_alignment_to_the_exact_domain(run_mailer, healthy_ses, nameserver):
    healthy_ses.answers[f"/v2/email/identities/{DOMAIN}"] = domain_identity(
        DkimAttributes={"SigningEnabled": False, "Status": "NOT_STARTED"})
    nameserver.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1; p=reject; aspf=s"]
    result = run_mailer("doctor")
    assert lines(result)["dmarc"].startswith(f"problem dmarc: p=reject at _dmarc.{DOMAIN}, but neither DKIM "
                                             "nor SPF aligns")


def test_doctor_finds_dmarc_at_the_parent_domain(run_mailer, healthy_ses, nameserver, doctor_settings):
    sub = f"letters.{DOMAIN}"
    healthy_ses.answers[f"/v2/email/identities/{sub}"] = domain_identity(MailFromAttributes=None)
    nameserver.records.update(good_zone(sub))
    del nameserver.records[(f"_dmarc.{sub}", "TXT")]
    doctor_settings("ses", sender=f"weekly@{sub}")
    result = run_mailer("doctor")
    assert lines(result)["dmarc"] == f"ok dmarc: p=quarantine at _dmarc.{DOMAIN}, aligned through DKIM"


def test_doctor_reports_two_spf_records(run_mailer, healthy_ses, nameserver):
    nameserver.records[(f"bounce.{DOMAIN}", "TXT")] = ["v=spf1 include:amazonses.com ~all",
                                                       "v=spf1 include:_spf.google.com ~all"]
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["spf"] == (f"problem spf: bounce.{DOMAIN} has 2 SPF records; receivers treat that as an "
                                    "error (merge them into one v=spf1 record)")


def test_doctor_could_not_check_dns_when_no_server_answers(run_mailer, healthy_ses, silent_nameserver):
    result = run_mailer("doctor")
    assert result.exit_code == 0, result.output
    found = lines(result)
    for name, what in (("spf", f"SPF of bounce.{DOMAIN}"), ("dmarc", f"DMARC of {DOMAIN}"),
                       ("dkim-dns", f"DKIM records of {DOMAIN}")):
        assert found[name].startswith(f"warning {name}: could not check {what}: no answer from DNS ("), found[name]
        assert found[name].endswith("(check again with network, or set MAILER_DNS_SERVER)")
    assert found["account"].startswith("ok account: ")


def test_doctor_reports_a_dns_timeout_that_is_not_seconds(run_mailer, healthy_ses, monkeypatch):
    monkeypatch.setenv("MAILER_DNS_TIMEOUT", "soon")
    result = run_mailer("doctor")
    assert result.exit_code == 1
    assert lines(result)["dns"] == "problem dns: MAILER_DNS_TIMEOUT must be seconds, got 'soon'"
