"""Render the ``subject`` / ``text_body`` / ``html_body`` blocks of an email template.

django-templated-mail 1.1.1 walks only the top-level nodes of a template, so a template
that ``{% extends %}`` another renders empty: its blocks sit under the ``ExtendsNode``.
Here the whole inheritance chain is walked, the most derived definition of each block
wins and ``{{ block.super }}`` works, as in a normal page render.

Subject and plain text are rendered with autoescaping off (``O'Brien & Sons`` stays as
written); the HTML part is rendered with autoescaping on.
"""

from __future__ import annotations

import weakref

from django.template.base import Template as CompiledTemplate
from django.template.context import Context
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext

from ...email_templates import PARTS, inheritance_chain


# Walking the node tree and resolving {% extends %} costs about a tenth of a bulk message's
# render; a template's chain cannot change while the template object lives (the cached
# loader hands out the same object), so it is remembered per object. A chain whose parent
# is a variable ({% extends some_var %}) is not cached.
_chains: weakref.WeakKeyDictionary[CompiledTemplate, list[dict]] = weakref.WeakKeyDictionary()


def _block_context(template: CompiledTemplate, context: Context) -> BlockContext:
    """Blocks of ``template`` and all its ancestors, most derived last as Django expects."""
    chain = _chains.get(template)
    if chain is None:
        chain, fixed = inheritance_chain(template, context)
        if fixed:
            _chains[template] = chain
    block_context = BlockContext()
    for blocks in chain:
        block_context.add_blocks(blocks)
    return block_context


def render_parts(template, context: Context, *, strip: bool = True) -> dict[str, str]:
    """Render each part of ``template`` (a backend template from ``get_template``), each
    stripped of surrounding whitespace unless ``strip`` is false."""
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
                    text = node.render(context)
                    parts[name] = text.strip() if strip else text
                finally:
                    context.autoescape = previous
    return parts
