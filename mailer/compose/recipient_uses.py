"""Where a template may use `recipient.*`: printed, and nowhere else.

An issue is rendered once per send, with a placeholder (``%%NAME%%``) where
each recipient's value goes; the message of each recipient is spliced from
those parts. So a template that does more with a recipient's value than
print it would do it to the placeholder, the same for everyone: ``{{
recipient.name | title }}`` sends ``%%Name%%``, which nothing fills, and
``{% if recipient.name %}`` takes the same branch for every reader. Such a
template is refused, with its file and line, before anything is sent.

Rendering per recipient would make those uses real, but it costs the whole
Jinja → MJML → CSS-inlining pipeline for every message (hours for a large
list instead of seconds); the one use that needs it in practice, a greeting
for a subscriber without a name, is ``[newsletter] default_name``.
"""

from __future__ import annotations

import functools

import jinja2
from jinja2 import meta, nodes

from ..errors import TemplateError

# Filters that leave a placeholder where it was, so the recipient's value
# filled in later is what the filter would have given: escaping (the value
# is escaped when filled), `string`, and `wrap`, which only breaks lines
# between words.
KEEPING_FILTERS = frozenset({"e", "escape", "string", "safe", "wrap"})


def check_recipient_uses(env: jinja2.Environment, name: str) -> None:
    """Refuse template `name`, or one it includes, imports or extends, where it uses
    `recipient.*` other than by printing it."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        source, filename, _ = env.loader.get_source(env, current)
        found, referenced = _uses(env, current, filename, source)
        if found:
            line, field, use = found
            raise TemplateError(
                f"recipient.{field} is used {use}, but it is only known per message: a template can "
                f"only print it, as {{{{ recipient.{field} }}}}", path=filename, line=line,
                hint="a greeting for subscribers without a name is [newsletter] default_name in newsletter.toml")
        pending.extend(referenced)


@functools.lru_cache(maxsize=64)
def _uses(env: jinja2.Environment, name: str, filename: str | None,
          source: str) -> tuple[tuple[int, str, str] | None, tuple[str, ...]]:
    """The first misuse of a recipient field in `source` as (line, field, how), and
    the names of the templates it refers to."""
    tree = env.parse(source, name, filename)
    referenced = tuple(n for n in meta.find_referenced_templates(tree) if n)
    parents: dict[int, nodes.Node] = {}
    for parent in tree.find_all(nodes.Node):
        for child in parent.iter_child_nodes():
            parents[id(child)] = parent
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        field = _recipient_field(node)
        if field is None:
            continue
        use = _misuse(node, parents)
        if use:
            return (node.lineno, field, use), referenced
    return None, referenced


def _recipient_field(node: nodes.Node) -> str | None:
    """The field name if `node` is ``recipient.<field>`` or ``recipient["<field>"]``."""
    if not (isinstance(node.node, nodes.Name) and node.node.name == "recipient"):
        return None
    if isinstance(node, nodes.Getattr):
        return node.attr
    return str(node.arg.value) if isinstance(node.arg, nodes.Const) else "…"


def _misuse(node: nodes.Node, parents: dict[int, nodes.Node]) -> str:
    """How the value at `node` is used if not printed (through keeping filters and
    concatenation only); '' when it is printed."""
    current, parent = node, parents.get(id(node))
    while (isinstance(parent, nodes.Concat)
           or isinstance(parent, nodes.Filter) and parent.node is current and parent.name in KEEPING_FILTERS):
        current, parent = parent, parents.get(id(parent))
    if isinstance(parent, nodes.Output):
        return ""
    if isinstance(parent, nodes.Filter):
        return f"with the filter '{parent.name}'"
    if isinstance(parent, nodes.Or):
        return "with a default ('or')"
    if isinstance(parent, (nodes.If, nodes.CondExpr, nodes.And, nodes.Not, nodes.Compare, nodes.Test)):
        return "in a condition"
    if isinstance(parent, (nodes.Assign, nodes.AssignBlock, nodes.For)):
        return "as a value to keep"
    return "in an expression"
