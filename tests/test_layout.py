"""The package's rules each live in one place: these tests hold the merged rules and the layout."""

import ast
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_async_email import checks, email_utils, tasks
from django_async_email.accounts import flows, tokens
from django_async_email.adapter import get_adapter
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import FlowEvent, Invitation, Kind, OutboxEmail
from django_async_email.outbox import kinds, routing
from django_async_email.outbox.fanout import fan_out
from django_async_email.outbox.publishing import current_celery_app, task_named

PACKAGE = Path(__file__).resolve().parent.parent / "django_async_email"
MESSAGE_ID = re.compile(r"<[0-9a-f]{32}@[^>]+>\Z")


def test_every_kind_has_a_registered_task_whose_name_and_queue_come_from_the_table():
    for kind in Kind:
        route = kinds.route_for(kind)
        task = task_named(route.task_name)
        assert task.name == route.task_name
        assert routing.route_task(task.name, [], {}, {}) == {"queue": route.queue_class}
    assert {getattr(tasks, name).name for name in dir(tasks) if name.endswith("_task") and name != "shared_task"} == {
        route.task_name for route in kinds.ROUTES}


def test_a_batch_task_takes_a_list_and_a_single_one_an_id():
    assert kinds.route_for(Kind.NOTIFICATION).argument([4, 5]) == [4, 5]
    assert kinds.route_for(Kind.VERIFICATION).argument([4]) == 4
    # Rows of a broadcast go on the low queue when they are sent in batches.
    assert kinds.route_for(Kind.NOTIFICATION, in_broadcast=True).queue_class == kinds.LOW
    assert kinds.route_for(Kind.VERIFICATION, in_broadcast=True).queue_class == kinds.HIGH


def test_one_celery_app_for_publishing_checks_and_status():
    from tests.celery_app import app

    assert current_celery_app() is app


@pytest.mark.django_db(transaction=True)
@pytest.mark.custom_user
def test_message_ids_have_one_format_on_the_request_path_and_in_the_fan_out(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MESSAGE_ID_DOMAIN": "mail.example.com"}
    email_utils.send_verification_email(make_user(user_type="Artist"))
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    fan_out(published[-1][1][0])
    ids = list(OutboxEmail.objects.values_list("message_id", flat=True))
    assert len(ids) == 2 and all(MESSAGE_ID.match(i) and i.endswith("@mail.example.com>") for i in ids)


@pytest.mark.parametrize("key,value,where", [
    ("ADAPTER", "nowhere.Adapter", "ASYNC_EMAIL['ADAPTER']"),
    ("API_PERMISSIONS", {"send_invitation": ["nowhere.IsOps"]}, "ASYNC_EMAIL['API_PERMISSIONS']['send_invitation']"),
])
def test_a_dotted_path_setting_fails_with_one_message_naming_it(settings, key, value, where):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, key: value}
    path = "nowhere.Adapter" if key == "ADAPTER" else "nowhere.IsOps"
    with pytest.raises(ImproperlyConfigured) as raised:
        if key == "ADAPTER":
            get_adapter()
        else:
            pytest.importorskip("rest_framework")
            from django_async_email.api.permissions import permission_classes_for  # needs the drf extra

            permission_classes_for("send_invitation")
    assert str(raised.value).startswith(f"{where} names {path!r}, which cannot be imported")
    # The system check reports the very same text.
    found = checks.check_adapter() if key == "ADAPTER" else checks.check_api_permissions()
    assert [m.msg for m in found] == [str(raised.value)]


@pytest.mark.django_db
def test_an_existing_account_is_refused_the_same_way_when_inviting_and_accepting(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "USER_TYPE_FIELD": None, "USER_TYPES": None}
    make_user(email="Taken@Example.com")
    with pytest.raises(InvalidEmailInput) as inviting:
        email_utils.send_invitation_email(None, "taken@example.com", "")
    invitation_token = tokens.make_invitation_token()
    Invitation.objects.create(email="TAKEN@example.com", token_hash=tokens.hash_invitation_token(invitation_token),
                              expires_at=tokens.invitation_expiry())
    with pytest.raises(InvalidEmailInput) as accepting:
        email_utils.accept_invitation(invitation_token, "correct horse battery staple")
    assert inviting.value.messages == accepting.value.messages == [flows.ACCOUNT_EXISTS]


@pytest.mark.django_db
def test_both_flows_that_set_a_password_apply_the_validators_the_same_way(make_user, settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 30}}]
    user = make_user()
    with pytest.raises(InvalidEmailInput) as reset:
        email_utils.reset_password(tokens.encode_uid(user.pk), tokens.password_reset_token_generator.make_token(user),
                                   "too short")
    with pytest.raises(InvalidEmailInput) as validated:
        flows.validated_password("password", "too short", user)
    assert reset.value.field == "new_password" and validated.value.field == "password"
    assert reset.value.messages == validated.value.messages
    assert "at least 30 characters" in reset.value.messages[0]


@pytest.mark.django_db
def test_a_used_token_is_recorded_by_the_same_digest_as_an_invitation_hash(make_user):
    user = make_user()
    token = tokens.verification_token_generator.make_token(user)
    flows.verify_email(tokens.encode_uid(user.pk), token)
    assert FlowEvent.objects.get(outcome="succeeded").token_digest == tokens.hash_invitation_token(token)


def _imports(path: Path, module: str) -> set[str]:
    """Every module of the package ``module`` imports, at module level or inside a function."""
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("django_async_email")}


def test_no_import_cycle_counting_imports_inside_functions():
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    edges = {}
    for module, path in files.items():
        targets = set()
        for name in _imports(path, module):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(f"{name}."):
                targets.add(name)
        edges[module] = targets

    def reaches(start, goal, seen):
        for nxt in edges[start]:
            if nxt == goal or (nxt not in seen and not seen.add(nxt) and reaches(nxt, goal, seen)):
                return True
        return False

    cycles = sorted(m for m in edges if reaches(m, m, set()))
    assert cycles == []


def test_no_module_is_longer_than_about_400_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
               for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    assert {name: n for name, n in lengths.items() if n > 420} == {}
