"""The shape of an email template: its ``subject`` / ``text_body`` / ``html_body`` blocks.

An email template defines its parts as blocks, directly or through ``{% extends %}``. The
request side checks that a template given by name has them (``outbox.validation``), the
system checks look at the shipped ones, and the build step renders them
(``delivery.build.rendering``); all three read the template's inheritance chain here.
"""

from __future__ import annotations

from typing import cast

from django.template import TemplateSyntaxError
from django.template.base import FilterExpression, Variable
from django.template.base import Template as CompiledTemplate
from django.template.context import Context
from django.template.loader_tags import BlockNode, ExtendsNode

#: Where the package's own email templates are.
TEMPLATE_DIR = "django_async_email"
#: block name -> whether it is HTML (and so autoescaped)
PARTS = {"subject": False, "text_body": False, "html_body": True}
#: A template must define the subject and at least one of these.
BODIES = ("text_body", "html_body")


def inheritance_chain(template: CompiledTemplate, context: Context) -> tuple[list[dict], bool]:
    """The blocks of ``template`` and of each ancestor, child first; and whether the chain
    is fixed (no ``{% extends %}`` names its parent with a variable)."""
    chain = []
    fixed = True
    current = template
    seen = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # get_nodes_by_type returns only nodes of the type asked for; the stubs say list[Node].
        blocks = cast("list[BlockNode]", current.nodelist.get_nodes_by_type(BlockNode))
        chain.append({n.name: n for n in blocks})
        extends = next(iter(cast("list[ExtendsNode]", current.nodelist.get_nodes_by_type(ExtendsNode))), None)
        if extends is None:
            break
        # {% extends %} compiles its argument to a FilterExpression (the stubs also allow a Node).
        parent_name = cast(FilterExpression, extends.parent_name)
        fixed = fixed and not parent_name.filters and not isinstance(parent_name.var, Variable)
        parent = extends.get_parent(context)
        current = getattr(parent, "template", parent)
    return chain, fixed


def missing_parts(template) -> list[str]:
    """What an email needs that ``template`` (from ``get_template``) does not define: ``"subject"``
    and/or ``"text_body or html_body"``. Empty when the parent is chosen at render time
    (``{% extends some_variable %}``): that is only known then, and the build step checks it."""
    compiled = getattr(template, "template", template)
    context = Context()
    try:
        with context.render_context.push_state(compiled, isolated_context=True), context.bind_template(compiled):
            chain, fixed = inheritance_chain(compiled, context)
    except (TemplateSyntaxError, AttributeError, TypeError, ValueError):
        return []  # a parent named by a variable the empty context lacks
    if not fixed:
        return []
    defined = {name for blocks in chain for name in blocks}
    missing = [] if "subject" in defined else ["subject"]
    if not any(body in defined for body in BODIES):
        missing.append(" or ".join(BODIES))
    return missing
