"""mailer: newsletters from a folder of Markdown files.

Pipeline: issue.py (Markdown → Issue) → compose.py (→ RenderedIssue) →
lint.py (checks) → message.py (→ MIME bytes per recipient). build.py ties
them to a workspace; cli.py is the command line.
"""
