"""The web pages mailer serves: the preview while writing, the unsubscribe page."""
