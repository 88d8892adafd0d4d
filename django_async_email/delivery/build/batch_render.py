"""Render one template for a whole batch of recipients, where that provably gives each of
them the bytes a render of their own would.

A bulk notification's recipients share everything but a few strings (their greeting, their
address, their unsubscribe links). ``plan_batch`` compares the contexts of a batch and
finds those values; it then walks the template's node tree, every block of its
inheritance chain, and takes the batch way only if each of them is used in one of these
ways and no other:

- printed as it is, ``{{ name }}``: no filter, no attribute, in a part whose autoescaping
  does not change around it (HTML escaped, subject and text not);
- as the whole of a condition, or joined by ``and`` / ``or`` / ``not``, when it is true for
  every recipient of the batch (``{% if unsubscribe_url %}``): the branch taken is then the
  same for all of them.

Anything else that touches such a value (a filter, a comparison, ``{% with %}``,
``{% blocktranslate %}``, a custom tag, ``{% include %}``, a tag this module does not
know, a parent chosen at render time) sends the batch back to a render per recipient.
The template is then rendered once with a marker string in place of each value, and each
recipient's parts are the rendered pieces joined with their own values, escaped as
Django would have escaped them there. ``tests/test_batch_render.py`` checks with
generated templates and recipients that the bytes are the same whenever this way is taken.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from django.template.base import FilterExpression, Node, NodeList, TextNode, Variable, VariableNode
from django.template.context import Context
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    ForNode,
    IfNode,
    LoadNode,
    TemplateLiteral,
    WithNode,
)
from django.template.loader_tags import BlockNode, ExtendsNode
from django.templatetags.i18n import TranslateNode
from django.utils.functional import Promise
from django.utils.html import conditional_escape

from ...email_templates import PARTS, inheritance_chain
from .rendering import render_parts

#: Operators of ``{% if %}`` that only ask their operands' truth.
TRUTH_OPERATORS = frozenset({"and", "or", "not"})
#: Values compared by equality to decide they are the same for every recipient; anything
#: else only when it is the very same object (equal dicts can print in different orders).
PLAIN_TYPES = (str, int, float, bool, type(None))


class Unsafe(Exception):
    """The template uses a recipient's own value in a way a shared render cannot reproduce."""


@dataclass
class Plan:
    """How to make each recipient's parts from one render."""

    template: object
    #: the context the shared render uses (the recipients' values replaced by markers)
    shared: dict
    #: marker -> the context key whose value replaces it
    markers: dict[str, str]

    def render(self, context_class=Context) -> dict[str, list]:
        """Render the template once; each part as pieces: text, or a key to fill in."""
        parts = render_parts(self.template, context_class(self.shared), strip=False)
        if not self.markers:
            return {name: [text] for name, text in parts.items()}
        pattern = re.compile("|".join(re.escape(m) for m in self.markers))
        pieces: dict[str, list] = {}
        for name, text in parts.items():
            split = pattern.split(text)
            found = pattern.findall(text)
            out: list = [split[0]]
            for marker, after in zip(found, split[1:], strict=True):
                out.append(Slot(self.markers[marker], PARTS[name]))
                out.append(after)
            pieces[name] = out
        return pieces


@dataclass(frozen=True)
class Slot:
    key: str
    html: bool


def fill(pieces: dict[str, list], data: dict) -> dict[str, str]:
    """One recipient's parts, as ``render_parts`` would have returned them."""
    parts = {}
    for name, items in pieces.items():
        parts[name] = "".join(
            item if isinstance(item, str)
            else (conditional_escape(data[item.key]) if item.html else str(data[item.key]))
            for item in items
        ).strip()
    return parts


def plan_batch(template, contexts: list[dict]) -> Plan | None:
    """A ``Plan`` for rendering ``template`` once for all of ``contexts``, or ``None`` when
    a render per recipient is needed (a value of theirs is used in a way not allowed)."""
    if len(contexts) < 2:
        return None
    varying = varying_keys(contexts)
    compiled = getattr(template, "template", template)
    probe = Context(dict(contexts[0]))
    try:
        with probe.render_context.push_state(compiled, isolated_context=True), probe.bind_template(compiled):
            chain, fixed = inheritance_chain(compiled, probe)
        if not fixed:
            return None
        uses = Uses(varying)
        # Each part's block, every definition of it in the chain ({{ block.super }}), and the
        # blocks nested in it, under the part's autoescaping; nothing else is rendered.
        for name, is_html in PARTS.items():
            for blocks in chain:
                if name in blocks:
                    uses.walk(blocks[name].nodelist, chain, autoescape=is_html, part=name)
    except Unsafe:
        return None
    for key in uses.printed:
        if not all(isinstance(c.get(key), str | Promise) for c in contexts):
            return None  # printed, but not a string: localisation and str() would apply
    for key in uses.truth_tested:
        if not all(c.get(key) for c in contexts):
            return None  # a branch on it could differ between recipients
    nonce = secrets.token_hex(8)
    markers = {f"zq{nonce}x{i}qz": key for i, key in enumerate(sorted(varying))}
    shared = dict(contexts[0])
    for marker, key in markers.items():
        shared[key] = marker
    return Plan(template=template, shared=shared, markers={m: k for m, k in markers.items() if k in uses.printed})


def varying_keys(contexts: list[dict]) -> set[str]:
    """The keys whose value is not the same for every context."""
    keys = set().union(*contexts)
    first = contexts[0]
    varying = set()
    for key in keys:
        value = first.get(key, _MISSING)
        for other in contexts[1:]:
            if not _same(value, other.get(key, _MISSING)):
                varying.add(key)
                break
    return varying


_MISSING = object()


def _same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, PLAIN_TYPES):
        return a == b
    if isinstance(a, Promise):
        return str(a) == str(b)
    return False


class Uses:
    """Walks nodes, raising ``Unsafe`` at the first use of a varying key not allowed."""

    def __init__(self, varying: set[str]):
        self.varying = varying
        self.printed: set[str] = set()
        self.truth_tested: set[str] = set()
        #: (part, key) -> the autoescaping it is printed under there
        self.escaping: dict[tuple[str, str], bool] = {}
        self._seen: set[tuple[int, object, object]] = set()

    def walk(self, nodes: Iterable[Node], chain: list[dict], *, autoescape, part) -> None:
        for node in nodes:
            self.node(node, chain, autoescape=autoescape, part=part)

    def node(self, node: Node, chain, *, autoescape, part) -> None:
        if isinstance(node, TextNode | CommentNode | LoadNode):
            return
        if isinstance(node, VariableNode):
            self.variable(node.filter_expression, autoescape=autoescape, part=part)
        elif isinstance(node, BlockNode):
            # Rendered through the block context: any definition in the chain may be the one.
            key = (id(node), autoescape, part)
            if key in self._seen:
                return
            self._seen.add(key)
            for blocks in chain:
                definition = blocks.get(node.name)
                if definition is not None:
                    self.walk(definition.nodelist, chain, autoescape=autoescape, part=part)
        elif isinstance(node, ExtendsNode):
            self.walk(node.nodelist, chain, autoescape=autoescape, part=part)
        elif isinstance(node, IfNode):
            for condition, nodelist in node.conditions_nodelists:
                if condition is not None:
                    self.condition(condition)
                self.walk(nodelist, chain, autoescape=autoescape, part=part)
        elif isinstance(node, ForNode):
            # The stubs allow plain strings here; the parser always builds these.
            self.expression(cast(FilterExpression, node.sequence))
            self.walk(cast(NodeList, node.nodelist_loop), chain, autoescape=autoescape, part=part)
            self.walk(cast(NodeList, node.nodelist_empty), chain, autoescape=autoescape, part=part)
        elif isinstance(node, WithNode):
            for expression in node.extra_context.values():
                self.expression(expression)
            self.walk(node.nodelist, chain, autoescape=autoescape, part=part)
        elif isinstance(node, AutoEscapeControlNode):
            self.walk(node.nodelist, chain, autoescape=node.setting, part=part)
        elif isinstance(node, TranslateNode):
            self.expression(node.filter_expression)
            if node.message_context is not None:  # {% translate "May" context month %}
                self.expression(node.message_context)
        else:
            # {% blocktranslate %}, {% include %}, {% filter %}, {% spaceless %}, custom tags...:
            # a node this module cannot see through, which may read any context key.
            raise Unsafe(type(node).__name__)

    def root(self, expression) -> str | None:
        var = getattr(expression, "var", expression)
        if isinstance(var, Variable) and var.lookups:
            return var.lookups[0]
        return None

    def expression(self, expression: FilterExpression) -> None:
        """An expression whose value must not depend on a varying key at all."""
        for candidate in self._variables(expression):
            if self.root(candidate) in self.varying:
                raise Unsafe(str(expression))

    def _variables(self, expression):
        yield expression
        for _func, args in getattr(expression, "filters", ()):
            for is_variable, arg in args:
                if is_variable:
                    yield arg

    def variable(self, expression: FilterExpression, *, autoescape, part) -> None:
        key = self.root(expression)
        if key not in self.varying:
            self.expression(expression)  # a filter argument may still be one
            return
        var = expression.var
        if expression.filters or tuple(var.lookups) != (key,) or var.translate:
            raise Unsafe(str(expression))
        previous = self.escaping.setdefault((part, key), autoescape)
        if previous != autoescape or autoescape != PARTS[part]:
            raise Unsafe(f"{key} printed with autoescaping changed")
        self.printed.add(key)

    def condition(self, condition) -> None:
        if isinstance(condition, TemplateLiteral):
            value = cast(FilterExpression, condition.value)  # a TemplateLiteral's is always one
            key = self.root(value)
            if key in self.varying:
                if value.filters or tuple(value.var.lookups) != (key,):
                    raise Unsafe(condition.text)
                self.truth_tested.add(key)
            else:
                self.expression(value)
            return
        operator = getattr(condition, "id", None)
        operands = [o for o in (getattr(condition, "first", None), getattr(condition, "second", None)) if o is not None]
        if operator in TRUTH_OPERATORS:
            for operand in operands:
                self.condition(operand)
            return
        # A comparison (==, in, <, is...): its operands must not vary at all.
        for operand in operands:
            if isinstance(operand, TemplateLiteral):
                self.expression(cast(FilterExpression, operand.value))
            else:
                self.condition_without_varying(operand)

    def condition_without_varying(self, condition) -> None:
        if isinstance(condition, TemplateLiteral):
            self.expression(cast(FilterExpression, condition.value))
            return
        for operand in (getattr(condition, "first", None), getattr(condition, "second", None)):
            if operand is not None:
                self.condition_without_varying(operand)
