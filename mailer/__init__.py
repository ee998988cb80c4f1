"""mailer: newsletters from a folder of Markdown files.

The packages are the domains: `compose` (Markdown → email, pure),
`store` (all SQL), `subscribers` (addresses, import, export), `send`
(messages, the engine, campaigns, transports), `feedback` (SES reports),
`web` (preview and unsubscribe servers) and `cli`. ARCHITECTURE.md at the
repository's root says how they depend on each other.
"""
