"""Sending an issue: message building (pure), the engine, the campaign, transports.

`message` turns a rendered issue into MIME bytes per recipient; `engine`
hands them to a `Transport` within a rate, recording each outcome in the
ledger; `campaign` plans, locks, runs and reports a send of one issue;
`transports/` are the ways a message leaves (SES, SMTP, an outbox).
"""
