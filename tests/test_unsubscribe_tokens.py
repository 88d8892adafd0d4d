"""The unsubscribe and preferences tokens: the package's fast minting gives exactly what
``django.core.signing.dumps`` gives, so ``signing.loads`` (and key rotation) take them."""

import pytest
from django.core import signing

from django_async_email.accounts import unsubscribe_tokens as t
from django_async_email.accounts.categories import category_for


@pytest.mark.django_db
def test_minted_tokens_are_what_signing_dumps_makes(make_user, monkeypatch, settings):
    user = make_user()
    category = category_for("update")
    monkeypatch.setattr(t.time, "time", lambda: 1_800_000_000.4)
    monkeypatch.setattr(signing.time, "time", lambda: 1_800_000_000.4)
    for secret in ("first-secret-" + "x" * 40, "second-secret-" + "y" * 40):
        settings.SECRET_KEY = secret
        assert t.make_unsubscribe_token(user, category) == signing.dumps(
            [str(user.pk), category.key], salt=t.UNSUBSCRIBE_SALT, compress=False)
        assert t.make_preferences_token(user) == signing.dumps([str(user.pk)], salt=t.PREFERENCES_SALT,
                                                               compress=False)
        assert t.read_unsubscribe_token(t.make_unsubscribe_token(user, category)) == (user, category)


@pytest.mark.django_db
def test_a_worker_without_a_urlconf_sends_without_unsubscribe_links(make_user, settings):
    # A worker started with settings of its own may have no ROOT_URLCONF at all.
    from django_async_email.delivery.build.compose import unsubscribe_context

    del settings.ROOT_URLCONF
    context = unsubscribe_context(make_user(), "update")
    assert context["unsubscribe_url"] is None and context["preferences_url"] is None
