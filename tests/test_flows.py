"""Completing the account flows: tokens, their lifetime, one use, and the audit trail."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.accounts import flows, tokens, users
from django_async_email.accounts.verification import is_verified
from django_async_email.delivery.address_lookup import resolve_address_requests
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import InvalidEmailInput, TokenError
from django_async_email.models import FlowEvent, Invitation, OutboxEmail

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, start=datetime(2026, 11, 29, 12, 0, 0)):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += timedelta(**kwargs)


def _last_event():
    return FlowEvent.objects.order_by("-pk").first()


def _deliver_all():
    ids = list(OutboxEmail.objects.filter(status="queued").values_list("pk", flat=True))
    deliver_emails(resolve_address_requests(ids))


def _link_params(message):
    (link,) = re.findall(r"https://\S+", message.body)
    return dict(re.findall(r"(uid|token)=([^&\s]+)", link))


# --- email verification -----------------------------------------------------------------

def test_verification_link_from_the_email_verifies_once(make_user, published):
    user = make_user()
    email_utils.send_verification_email(user)
    _deliver_all()
    params = _link_params(mail.outbox[-1])
    assert flows.verify_email(params["uid"], params["token"]) == user
    assert is_verified(user)
    assert _last_event().outcome == "succeeded"
    with pytest.raises(TokenError) as info:
        flows.verify_email(params["uid"], params["token"])
    assert str(info.value) == TokenError.public_message
    assert _last_event().outcome == "used"


@pytest.mark.custom_user
def test_the_hosts_verified_flag_is_kept_in_sync(make_user):
    user = make_user(email_verified=False)
    token = tokens.verification_token_generator.make_token(user)
    flows.verify_email(tokens.encode_uid(user.pk), token)
    user.refresh_from_db()
    assert user.email_verified is True


def test_stock_fields_only(make_user, settings):
    """Without a host flag the package's own record is the truth."""
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFIED_FIELD": None}
    user = make_user()
    assert not is_verified(user)
    flows.verify_email(tokens.encode_uid(user.pk), tokens.verification_token_generator.make_token(user))
    assert is_verified(user)
    user.email = "new@example.com"
    user.save()
    assert not is_verified(user)  # a changed address must be verified again


def test_verification_token_dies_when_the_address_changes(make_user):
    user = make_user(email="old@example.com")
    token = tokens.verification_token_generator.make_token(user)
    user.email = "new@example.com"
    user.save()
    with pytest.raises(TokenError):
        flows.verify_email(tokens.encode_uid(user.pk), token)
    assert _last_event().outcome == "invalid"


def test_verification_expiry_boundary(make_user, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_TIMEOUT": 3600}
    clock = Clock()
    generator = tokens.EmailVerificationTokenGenerator(now=clock)
    user = make_user()
    token = generator.make_token(user)
    uid = tokens.encode_uid(user.pk)
    clock.advance(seconds=3601)
    with pytest.raises(TokenError):
        flows.verify_email(uid, token, token_generator=generator)
    assert _last_event().outcome == "expired"
    clock.advance(seconds=-1)  # exactly at the last valid second
    assert flows.verify_email(uid, token, token_generator=generator) == user


@pytest.mark.parametrize("uid,token", [("", ""), ("!!", "x-y"), ("MQ", "nonsense"), ("OTk5OTk", "abc-def"),
                                       (None, None), ("MQ", "zz-" + "a" * 30)])
def test_garbage_is_a_uniform_error(uid, token, make_user):
    make_user()
    with pytest.raises(TokenError) as info:
        flows.verify_email(uid, token)
    assert str(info.value) == TokenError.public_message


# --- cross-flow rejection -------------------------------------------------------------------

def test_tokens_are_rejected_by_every_other_flow(make_user):
    user = make_user()
    uid = tokens.encode_uid(user.pk)
    verify_token = tokens.verification_token_generator.make_token(user)
    reset_token = tokens.password_reset_token_generator.make_token(user)
    from django.contrib.auth.tokens import default_token_generator

    django_token = default_token_generator.make_token(user)
    for token in (reset_token, django_token):
        with pytest.raises(TokenError):
            flows.verify_email(uid, token)
    for token in (verify_token, django_token):
        with pytest.raises(TokenError):
            email_utils.reset_password(uid, token, "a brand new passphrase")
    assert not default_token_generator.check_token(user, reset_token)
    with pytest.raises(TokenError):
        email_utils.accept_invitation(reset_token, "a brand new passphrase")


# --- password reset -------------------------------------------------------------------------

def test_reset_from_the_email_sets_the_password_and_queues_a_notice(make_user, published):
    user = make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    _deliver_all()
    params = _link_params(mail.outbox[-1])
    email_utils.reset_password(params["uid"], params["token"], "a brand new passphrase")
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")
    notice = OutboxEmail.objects.get(kind="password_changed")
    assert notice.user == user and notice.status == "queued"
    _deliver_all()
    assert mail.outbox[-1].subject == "Your password on ZamIO was changed"
    with pytest.raises(TokenError):
        email_utils.reset_password(params["uid"], params["token"], "another new passphrase")
    assert _last_event().outcome == "used"


def test_password_validators_run_and_report_their_messages(make_user):
    user = make_user()
    token = tokens.password_reset_token_generator.make_token(user)
    with pytest.raises(InvalidEmailInput) as info:
        email_utils.reset_password(tokens.encode_uid(user.pk), token, "password")
    messages = info.value.message_dict["new_password"]
    assert any("too short" in m for m in messages) and any("too common" in m for m in messages)
    # A rejected password does not use the token up.
    email_utils.reset_password(tokens.encode_uid(user.pk), token, "a brand new passphrase")


@pytest.mark.parametrize("change", ["password", "login", "email", "deactivate"])
def test_reset_token_dies_after_account_changes(change, make_user):
    user = make_user()
    token = tokens.password_reset_token_generator.make_token(user)
    if change == "password":
        user.set_password("something else entirely")
    elif change == "login":
        user.last_login = timezone.now() + timedelta(seconds=5)
    elif change == "email":
        user.email = "other@example.com"
    else:
        user.is_active = False
    user.save()
    with pytest.raises(TokenError):
        email_utils.reset_password(tokens.encode_uid(user.pk), token, "a brand new passphrase")


def test_reset_expiry_boundary_uses_the_packages_setting(make_user, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "PASSWORD_RESET_TIMEOUT": 600}
    clock = Clock()
    generator = tokens.PasswordResetTokenGenerator(now=clock)
    user = make_user()
    token = generator.make_token(user)
    uid = tokens.encode_uid(user.pk)
    clock.advance(seconds=601)
    with pytest.raises(TokenError):
        email_utils.reset_password(uid, token, "a brand new passphrase", token_generator=generator)
    assert _last_event().outcome == "expired"
    clock.advance(seconds=-1)
    email_utils.reset_password(uid, token, "a brand new passphrase", token_generator=generator)


def test_reset_timeout_falls_back_to_djangos(settings):
    settings.PASSWORD_RESET_TIMEOUT = 1234
    assert tokens.PasswordResetTokenGenerator().timeout_seconds == 1234


def test_reset_request_for_unknown_inactive_or_unusable_accounts_sends_nothing(make_user, published):
    make_user(email="inactive@example.com", is_active=False)
    unusable = make_user(email="unusable@example.com")
    unusable.set_unusable_password()
    unusable.save()
    for address in ("nobody@example.com", "inactive@example.com", "unusable@example.com"):
        email_utils.request_password_reset(address)
    _deliver_all()
    assert mail.outbox == []
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {"suppressed"}
    assert FlowEvent.objects.filter(flow="password_reset_request", outcome="rejected").count() == 3


def test_reset_goes_to_the_stored_address_not_a_unicode_look_alike(make_user, published):
    make_user(email="mike@example.com")
    email_utils.request_password_reset("mıke@example.com")  # dotless i
    email_utils.request_password_reset("MIKE@EXAMPLE.COM")
    _deliver_all()
    assert [m.to for m in mail.outbox] == [["mike@example.com"]]
    statuses = dict(OutboxEmail.objects.values_list("recipient", "status"))
    assert statuses == {"mıke@example.com": "suppressed", "mike@example.com": "sent"}


def test_matching_is_by_case_folding():
    assert users.reset_candidates("x@example.com") == []


# --- invitations ----------------------------------------------------------------------------

def _invite(make_user, address="new@example.com", user_type="Publisher"):
    inviter = make_user(is_staff=True)  # staff may invite any type
    email_utils.send_invitation_email(inviter, address, user_type)
    _deliver_all()
    return re.search(r"token=([\w-]+)", mail.outbox[-1].body).group(1)


def test_invitation_token_is_long_random_and_stored_only_as_a_hash(make_user, published):
    token = _invite(make_user)
    assert len(token) >= 32
    invitation = Invitation.objects.get()
    assert invitation.token_hash == tokens.hash_invitation_token(token)
    assert token not in invitation.token_hash
    row = OutboxEmail.objects.get(kind="invitation")
    assert token not in str(row.context)


def test_accepting_creates_the_user_with_the_invited_type_verified(make_user, published, settings):
    token = _invite(make_user)
    user = email_utils.accept_invitation(token, "a brand new passphrase", first_name="Efua")
    assert user.email == "new@example.com" and user.first_name == "Efua"
    assert user.check_password("a brand new passphrase")
    if settings.CUSTOM_USER:
        assert user.user_type == "Publisher"
    assert is_verified(user)
    invitation = Invitation.objects.get()
    assert invitation.accepted_user == user and invitation.accepted_at is not None
    with pytest.raises(TokenError):
        email_utils.accept_invitation(token, "a brand new passphrase")
    assert _last_event().outcome == "used"


def test_reinviting_revokes_the_earlier_link(make_user, published):
    first = _invite(make_user)
    second = _invite(make_user)
    with pytest.raises(TokenError):
        email_utils.accept_invitation(first, "a brand new passphrase")
    assert _last_event().outcome == "revoked"
    assert email_utils.accept_invitation(second, "a brand new passphrase").email == "new@example.com"


def test_invitation_expiry_boundary(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "INVITATION_TIMEOUT": 3600}
    token = _invite(make_user)
    invitation = Invitation.objects.get()
    assert (invitation.expires_at - invitation.created_at).total_seconds() == pytest.approx(3600, abs=1)
    with pytest.raises(TokenError):
        email_utils.accept_invitation(token, "a brand new passphrase", now=invitation.expires_at)
    assert _last_event().outcome == "expired"
    user = email_utils.accept_invitation(token, "a brand new passphrase",
                                   now=invitation.expires_at - timedelta(seconds=1))
    assert user.pk


def test_invitation_password_is_validated(make_user, published):
    token = _invite(make_user)
    with pytest.raises(InvalidEmailInput) as info:
        email_utils.accept_invitation(token, "short")
    assert info.value.field == "password"
    assert not get_user_model().objects.filter(email="new@example.com").exists()
    assert Invitation.objects.get().accepted_at is None


def test_invitation_for_an_address_that_got_an_account_meanwhile(make_user, published):
    token = _invite(make_user)
    make_user(email="NEW@example.com")
    with pytest.raises(InvalidEmailInput):
        email_utils.accept_invitation(token, "a brand new passphrase")


def test_a_custom_user_creation_hook(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "ADAPTER": "tests.adapters.InvitedUsersAreStaffAdapter"}
    token = _invite(make_user)
    assert email_utils.accept_invitation(token, "a brand new passphrase").is_staff is True


def test_every_bad_token_gets_the_same_message_and_the_audit_says_which(make_user, published):
    messages = set()
    for call in (
        lambda: flows.verify_email("MQ", "bad-token"),
        lambda: email_utils.reset_password("MQ", "bad-token", "a brand new passphrase"),
        lambda: email_utils.accept_invitation("x" * 43, "a brand new passphrase"),
    ):
        with pytest.raises(TokenError) as info:
            call()
        messages.add(str(info.value))
    assert len(messages) == 1
    assert list(FlowEvent.objects.order_by("pk").values_list("flow", "outcome")) == [
        ("verification", "invalid"), ("password_reset", "invalid"), ("invitation", "invalid")]


def test_task_results_carry_no_token(make_user, published):
    from django_async_email.tasks import send_password_reset_email_task

    email_utils.send_password_reset_email(make_user())
    result = send_password_reset_email_task.run(OutboxEmail.objects.get().pk)
    token = _link_params(mail.outbox[-1])["token"]
    assert result == {"sent": 1, "failed": 0, "retrying": 0}
    assert token not in repr(result)


def test_links_survive_a_secret_key_rotation(make_user, settings):
    user = make_user()
    token = tokens.verification_token_generator.make_token(user)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-key", [old_key]
    assert flows.verify_email(tokens.encode_uid(user.pk), token) == user
    settings.SECRET_KEY_FALLBACKS = []
    other = make_user()
    stale = tokens.SignedTokenGenerator.__new__(tokens.EmailVerificationTokenGenerator)
    stale.__init__(secret=old_key)
    with pytest.raises(TokenError):
        flows.verify_email(tokens.encode_uid(other.pk), stale.make_token(other))
