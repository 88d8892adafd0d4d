"""One normal form for addresses, before any comparison, lookup or storage: invisible
characters, compatibility forms and Unicode domains cannot make one address look like two."""

import pytest

from django_async_email import email_utils
from django_async_email.accounts.addresses import normalise_address
from django_async_email.accounts.users import account_exists, reset_candidates
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Invitation, OutboxEmail

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("typed", [
    "alice@example.com\u200b",       # a zero-width space after it
    "\ufeffalice@example.com",       # a byte-order mark before it
    "alice@exam\u00adple.com",       # a soft hyphen in the domain
    "alice@EXAMPLE.com",             # domains have no case
    "ａｌｉｃｅ@example.com",          # fullwidth letters (NFKC)
])
def test_look_alikes_of_an_address_are_that_address(typed, make_user, published):
    alice = make_user(email="alice@example.com")
    assert normalise_address(typed) == "alice@example.com"
    assert account_exists(typed)
    assert reset_candidates(typed) == [alice]
    with pytest.raises(InvalidEmailInput) as refused:  # the host's own code is told
        email_utils.send_invitation_email(None, typed, None)
    assert refused.value.error_dict["invitee_email"][0].code == "exists"
    assert not Invitation.objects.exists()
    email_utils.request_password_reset(typed)
    assert OutboxEmail.objects.get().recipient == "alice@example.com"  # stored in normal form


def test_a_unicode_domain_is_stored_in_its_ascii_form_and_found_in_either(make_user, published):
    assert normalise_address("bob@exämple.com") == "bob@xn--exmple-cua.com"
    bob = make_user(email="bob@exämple.com")  # a host may have stored the Unicode form
    assert reset_candidates("bob@xn--exmple-cua.com") == [bob]
    assert account_exists("bob@EXÄMPLE.com")


def test_an_address_that_is_another_users_username_counts_as_taken(django_user_model):
    django_user_model.objects.create_user(username="old@example.com", email="new@example.com", password="x")
    assert account_exists("old@example.com")
