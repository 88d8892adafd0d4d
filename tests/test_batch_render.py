"""The batch render gives each recipient exactly the bytes a render of their own gives,
whenever it is taken: a differential test over generated templates and recipients, with
autoescaping on and off, filters, conditions on a recipient's value, loops, ``{% with %}``,
translation tags and inheritance."""

from __future__ import annotations

from django.template import Engine
from django.template.context import Context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from django_async_email.delivery.build.batch_render import fill, plan_batch
from django_async_email.delivery.build.rendering import render_parts

#: Pieces of template; names starting with v vary per recipient, c are shared.
FRAGMENTS = [
    "plain text & <b>bold</b> 'quoted' \"double\"",
    "{{ v1 }}", "{{ v2 }}", "{{ c1 }}", "{{ c2 }}",
    "{{ v1|upper }}", "{{ v1|default:'x' }}", "{{ c1|default:v1 }}", "{{ v1.upper }}",
    "{% if v1 %}A{{ v2 }}{% else %}B{% endif %}",
    "{% if vb %}yes{% else %}no{% endif %}",
    "{% if not vb %}not{% endif %}",
    "{% if v1 and c1 %}and{% endif %}{% if v2 or vb %}or{% endif %}",
    "{% if v1 == 'x' %}eq{% endif %}",
    "{% if c1 == 'shared <&>' %}c-eq{% endif %}",
    "{% autoescape off %}{{ v1 }}{% endautoescape %}",
    "{% autoescape on %}{{ v2 }}{% endautoescape %}",
    "{% autoescape off %}{{ c1 }}{% endautoescape %}",
    "{% for i in items %}[{{ i }}{{ v1 }}]{% endfor %}",
    "{% for i in v3 %}{{ i }}{% endfor %}",
    "{% with a=v1 %}{{ a }}{% endwith %}",
    "{% with a=c1 %}{{ a }}{{ v2 }}{% endwith %}",
    "{% filter lower %}{{ v1 }}{% endfilter %}",
    "{% spaceless %}<p> {{ c1 }} </p>{% endspaceless %}",
    "{% translate 'Hello' %}", "{% translate 'May' context v2 %}", "{% translate 'May' context c1 %}",
    "{% blocktranslate %}Hi {{ v1 }}{% endblocktranslate %}",
    "{% blocktranslate with n=c1 %}Hi {{ n }}{% endblocktranslate %}",
    "{{ vu }}", "{% if vu %}u{% endif %}",
    "  \n ", "\n{{ v2 }}\n",
]

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
#: recipient strings, with what escaping, stripping and subject folding care about
recipient_value = st.one_of(text, st.sampled_from(["", " lead", "trail ", "O'Brien & <Sons>", "a\nb", "\t"]))


@st.composite
def templates(draw):
    def body():
        return "".join(draw(st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=5)))

    parts = {name: body() for name in ("subject", "text_body", "html_body")}
    if not draw(st.booleans()):
        source = "{% load i18n %}" + "".join(f"{{% block {n} %}}{b}{{% endblock %}}" for n, b in parts.items())
        return {"email.html": source}
    child = {name: body() for name in parts}
    base = "{% load i18n %}" + "".join(
        f"{{% block {n} %}}{b}{{% block inner_{n} %}}{{{{ c2 }}}}{{% endblock %}}{{% endblock %}}"
        for n, b in parts.items())
    overridden = draw(st.lists(st.sampled_from(list(parts) + [f"inner_{n}" for n in parts]), unique=True))
    source = "{% extends 'base.html' %}{% load i18n %}" + "".join(
        f"{{% block {n} %}}{'{{ block.super }}' if draw(st.booleans()) else ''}"
        f"{child.get(n.removeprefix('inner_'), '')}{{% endblock %}}" for n in overridden)
    return {"base.html": base, "email.html": source}


@st.composite
def recipients(draw):
    shared = {"c1": "shared <&>", "c2": "more 'shared'", "items": [1, 2]}
    truthy = draw(st.booleans())
    n = draw(st.integers(min_value=2, max_value=5))
    contexts = []
    for _ in range(n):
        contexts.append({
            **shared,
            "v1": draw(recipient_value), "v2": draw(recipient_value),
            "vb": draw(st.sampled_from(["x", "y"] if truthy else ["", "x"])),
            "v3": draw(st.lists(st.integers(0, 3), max_size=2)),
            "vu": draw(st.sampled_from([None, 0, 7, object()])),
        })
    return contexts


def engine(sources):
    return Engine(loaders=[("django.template.loaders.locmem.Loader", sources)],
                  libraries={"i18n": "django.templatetags.i18n"})


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(), recipients())
def test_the_batch_render_is_byte_for_byte_a_render_per_recipient(sources, contexts):
    template = engine(sources).get_template("email.html")
    plan = plan_batch(template, contexts)
    event("batch" if plan else "per recipient")
    if plan is None:
        return
    pieces = plan.render()
    for context in contexts:
        assert fill(pieces, context) == render_parts(template, Context(dict(context)))


def test_a_plain_notification_template_takes_the_batch_way():
    """So the differential test above is not vacuous: the common shape is planned."""
    template = engine({"email.html": (
        "{% load i18n %}{% block subject %}{{ c1 }}{% endblock %}"
        "{% block text_body %}{% if vb %}{{ v1 }}\n\n{% endif %}{{ c2 }}{% if v2 %}\n{{ v2 }}{% endif %}{% endblock %}"
        "{% block html_body %}<p>{{ v1 }}</p><a href=\"{{ v2 }}\">{% translate 'Hello' %}</a>{% endblock %}"
    )}).get_template("email.html")
    contexts = [{"c1": "S", "c2": "M", "vb": "x", "v1": f"<Ann {i}>", "v2": f"https://x/?a={i}&b"} for i in range(3)]
    plan = plan_batch(template, contexts)
    assert plan is not None
    pieces = plan.render()
    for context in contexts:
        assert fill(pieces, context) == render_parts(template, Context(dict(context)))
    assert fill(pieces, contexts[0])["html_body"] == '<p>&lt;Ann 0&gt;</p><a href="https://x/?a=0&amp;b">Hello</a>'


def test_a_value_used_any_other_way_sends_the_batch_back_to_per_recipient_renders():
    contexts = [{"v1": "a", "vb": "x"}, {"v1": "b", "vb": ""}]
    for body in ("{{ v1|upper }}", "{% if v1 == 'a' %}x{% endif %}", "{% with a=v1 %}{{ a }}{% endwith %}",
                 "{% filter upper %}{{ v1 }}{% endfilter %}", "{% if vb %}x{% endif %}",
                 "{% blocktranslate %}{{ v1 }}{% endblocktranslate %}", "{% include 'x.html' %}",
                 "{% autoescape off %}{{ v1 }}{% endautoescape %}"):
        template = engine({"email.html": "{% load i18n %}{% block html_body %}" + body + "{% endblock %}",
                           "x.html": "{{ v1 }}"}).get_template("email.html")
        assert plan_batch(template, contexts) is None, body


# --- In the build step ----------------------------------------------------------------------------

import pytest  # noqa: E402

from django_async_email import email_utils  # noqa: E402
from django_async_email.adapter import get_adapter  # noqa: E402
from django_async_email.delivery.build import batches  # noqa: E402
from django_async_email.delivery.build.compose import build_message  # noqa: E402
from django_async_email.delivery.claim import claim_emails  # noqa: E402
from django_async_email.models import OutboxEmail  # noqa: E402

NAMES = ["Ann", "O'Brien & <Sons>", "", "Zoë", "  spaced  "]


def shape(message):
    return (message.subject, message.body, list(message.alternatives), sorted(message.extra_headers.items()),
            message.to, message.from_email)


@pytest.mark.django_db
def test_the_default_notification_is_rendered_once_per_chunk_and_identically(make_user, published, settings,
                                                                              monkeypatch):
    from django_async_email.accounts import unsubscribe_tokens

    settings.ROOT_URLCONF = "tests.urls_with_auth"  # the unsubscribe and preferences links
    # The links' tokens carry the second they were signed in; both builds sign in the same one.
    monkeypatch.setattr(unsubscribe_tokens.time, "time", lambda: 1_800_000_000.0)
    users = [make_user(email=f"r{i}@example.com", first_name=name) for i, name in enumerate(NAMES)]
    email_utils.send_notification_to_users([u.pk for u in users], "Royalties & <you>", "Line one\nLine <two>")
    _token, rows = claim_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    built, leftover = batches.build_batch(rows, adapter=get_adapter(), connection=None)
    assert set(built) == {row.pk for row in rows} and leftover == {}
    for row in rows:
        assert shape(built[row.pk]) == shape(build_message(row))
    greetings = [built[row.pk].body.splitlines()[0] for row in rows]
    assert greetings == ["Hello Ann,", "Hello O'Brien & <Sons>,", "Hello,", "Hello Zoë,", "Hello spaced,"]
    assert "Hello O&#x27;Brien &amp; &lt;Sons&gt;," in built[rows[1].pk].alternatives[0][0]
    assert "List-Unsubscribe" in built[rows[0].pk].extra_headers


@pytest.mark.django_db
def test_a_template_the_batch_way_cannot_prove_is_rendered_per_recipient(make_user, published, settings):
    users = [make_user(email=f"r{i}@example.com", first_name=name) for i, name in enumerate(NAMES)]
    email_utils.send_notification_to_users([u.pk for u in users], "S", "M", template_name="per_user_filter.html")
    _token, rows = claim_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    built, leftover = batches.build_batch(rows, adapter=get_adapter(), connection=None)
    assert built == {} and set(leftover) == {row.pk for row in rows}  # contexts kept for the per-row build
    assert build_message(rows[0], context=leftover[rows[0].pk]).body.startswith("ANN")


@pytest.mark.django_db
@pytest.mark.custom_user
def test_lazy_values_are_filled_in_the_recipients_language(make_user, published, monkeypatch):
    from django.utils.translation import gettext_lazy

    adapter = get_adapter()
    words = [gettext_lazy("Hello,"), gettext_lazy("Email preferences")]
    monkeypatch.setattr(type(adapter), "get_extra_context",
                        lambda self, email, user: {"answer": words[user.pk % 2]})
    users = [make_user(email=f"fr{i}@example.com", language="fr") for i in range(4)]
    email_utils.send_notification_to_users([u.pk for u in users], "S", "M", template_name="lazy_answer.html")
    _token, rows = claim_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    built, _left = batches.build_batch(rows, adapter=adapter, connection=None)
    assert set(built) == {row.pk for row in rows}  # the batch way, with a lazy value that varies
    for row in rows:
        assert built[row.pk].body == build_message(row, adapter).body
    # "Hello," in the recipients' French, as their own render says it (not the worker's English).
    assert "Bonjour," in {built[row.pk].body.split("\n")[0] for row in rows}
