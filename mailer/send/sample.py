"""What `mailer render` writes: the email as the sample reader would get it.

The HTML and text parts, personalised for the sample recipient, and the
whole message as an ``.eml`` file, built exactly as a send builds it. It
lives with the sending side because the message is; composing an issue
needs no message at all.
"""

from __future__ import annotations

from pathlib import Path

from ..compose.build import sample_recipient
from ..compose.render import RenderedIssue
from ..errors import MailerError
from ..workspace import Workspace
from .message import MessageTemplate, new_envelope


def write_files(workspace: Workspace, rendered: RenderedIssue, out_dir: Path) -> list[Path]:
    """Write <stem>.html, <stem>.txt and a sample <stem>.eml into `out_dir`."""
    recipient = sample_recipient(workspace)
    html, text = rendered.personalize(recipient, workspace.settings.newsletter.default_name)
    eml = MessageTemplate(rendered, workspace.settings).build(recipient, new_envelope(workspace.settings))
    stem = rendered.issue.stem
    outputs = {
        out_dir / f"{stem}.html": html.encode("utf-8"),
        out_dir / f"{stem}.txt": text.encode("utf-8"),
        out_dir / f"{stem}.eml": eml,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, data in outputs.items():
            path.write_bytes(data)
    except OSError as exc:
        raise MailerError(f"cannot write: {exc.strerror}", path=exc.filename or out_dir) from None
    return list(outputs)
