"""Render the ``subject`` / ``text_body`` / ``html_body`` blocks of an email template.

django-templated-mail 1.1.1 walks only the top-level nodes of a template, so a template
that ``{% extends %}`` another renders empty: its blocks sit under the ``ExtendsNode``.
Here the whole inheritance chain is walked, the most derived definition of each block
wins and ``{{ block.super }}`` works, as in a normal page render.

Subject and plain text are rendered with autoescaping off (``O'Brien & Sons`` stays as
written); the HTML part is rendered with autoescaping on.
"""

from __future__ import annotations

from django.template.base import Template as CompiledTemplate
from django.template.context import Context
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode, ExtendsNode

#: block name -> whether it is HTML (and so autoescaped)
PARTS = {"subject": False, "text_body": False, "html_body": True}


def _block_context(template: CompiledTemplate, context: Context) -> BlockContext:
    """Blocks of ``template`` and all its ancestors, most derived last as Django expects."""
    block_context = BlockContext()
    current = template
    seen = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        block_context.add_blocks({n.name: n for n in current.nodelist.get_nodes_by_type(BlockNode)})
        extends = next(iter(current.nodelist.get_nodes_by_type(ExtendsNode)), None)
        if extends is None:
            break
        parent = extends.get_parent(context)
        current = getattr(parent, "template", parent)
    return block_context


def render_parts(template, context: Context) -> dict[str, str]:
    """Render each part of ``template`` (a backend template from ``get_template``)."""
    compiled = getattr(template, "template", template)
    parts: dict[str, str] = {}
    with context.render_context.push_state(compiled, isolated_context=True), context.bind_template(compiled):
        blocks = _block_context(compiled, context)
        for name, is_html in PARTS.items():
            node = blocks.get_block(name)
            if node is None:
                continue
            with context.render_context.push(**{BLOCK_CONTEXT_KEY: blocks}):
                previous, context.autoescape = context.autoescape, is_html
                try:
                    parts[name] = node.render(context).strip()
                finally:
                    context.autoescape = previous
    return parts
