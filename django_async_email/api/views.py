"""The REST endpoints: the six of the system this package generalises, plus the flows (links and codes).

Queued work answers 202 with the task id(s). The anonymous endpoints answer the same
bytes whatever the account state, and do the same work for every address.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .. import email_utils
from ..accounts import preferences
from ..accounts.users import has_field
from ..accounts.verification import is_verified
from ..status import system_status
from . import serializers as s
from .errors import AlreadyVerified, drf_error
from .permissions import permission_classes_for
from .schema import ERROR_BODY, describe
from .throttles import PerAddressThrottle, PerIPThrottle, PerUserThrottle, throttle

RESET_REQUESTED = "If an account uses this address, a password reset email is on its way."
VERIFICATION_REQUESTED = "If an account with this address needs verifying, a verification email is on its way."
ERRORS = (ERROR_BODY, "Field errors keyed by field name, or a detail")


class EmailAPIView(APIView):
    """Permissions from settings per endpoint; our own throttles replace DRF's defaults.

    The package's errors become DRF exceptions before DRF handles them (``errors.drf_error``),
    so the host's exception handler shapes every answer of every endpoint.
    """

    endpoint = ""
    throttle_classes: tuple[type[BaseThrottle], ...] = ()
    #: Python API argument name -> request field name, where they differ.
    field_names: dict[str, str] = {}

    def get_permissions(self):
        return [permission() for permission in permission_classes_for(self.endpoint)]

    def get_throttles(self):
        return [throttle_class() for throttle_class in self.throttle_classes]

    def handle_exception(self, exc):
        return super().handle_exception(drf_error(exc, self.field_names))


def accepted(task_id) -> Response:
    return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)


class ResendVerificationView(EmailAPIView):
    """Send a new verification email: to the signed-in user, or to whoever owns ``email``."""

    endpoint = "resend_verification"
    throttle_classes = (throttle(PerIPThrottle, "verification_ip"), throttle(PerUserThrottle, "verification_user"),
                        throttle(PerAddressThrottle, "verification_address"))

    @describe("Send a new verification email", request=s.ResendVerificationSerializer,
              responses={202: (s.TaskAcceptedSerializer, "Queued (signed in) or the same answer for any address"),
                         400: ERRORS},
              description="Signed in: to your own address (400 if it is verified already). Anonymous: give "
                          "`email`; the answer is the same whether or not an account needs verifying.")
    def post(self, request):
        if request.user and request.user.is_authenticated:
            if is_verified(request.user):
                raise AlreadyVerified()
            return accepted(email_utils.send_verification_email(request.user))
        serializer = s.ResendVerificationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email_utils.request_verification_email(serializer.validated_data["email"])
        return Response({"detail": VERIFICATION_REQUESTED}, status=status.HTTP_202_ACCEPTED)


class RequestPasswordResetView(EmailAPIView):
    """Ask for a password reset email; the answer is the same whether or not the account exists."""

    endpoint = "request_password_reset"
    authentication_classes = ()  # anonymous: no session, so no CSRF and no per-user difference
    throttle_classes = (throttle(PerIPThrottle, "password_reset_ip"),
                        throttle(PerAddressThrottle, "password_reset_address"))

    @describe("Ask for a password reset email", request=s.PasswordResetRequestSerializer,
              responses={202: (s.DetailSerializer, "Same answer whether or not an account exists"), 400: ERRORS},
              description="The account lookup happens in the worker; the answer never says whether it exists.")
    def post(self, request):
        serializer = s.PasswordResetRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email_utils.request_password_reset(serializer.validated_data["email"])
        return Response({"detail": RESET_REQUESTED}, status=status.HTTP_202_ACCEPTED)


class QueueView(EmailAPIView):
    """Validate the body, queue the work, answer 202; input the Python API refuses is a 400."""

    serializer_class: type[BaseSerializer] | None = None

    def queue(self, request, data: dict) -> dict:
        raise NotImplementedError

    def post(self, request):
        assert self.serializer_class is not None, "a QueueView subclass sets serializer_class"
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(self.queue(request, serializer.validated_data), status=status.HTTP_202_ACCEPTED)


class SendInvitationView(QueueView):
    """Invite someone to create an account with a user type."""

    endpoint = "send_invitation"
    throttle_classes = (throttle(PerUserThrottle, "invitation_user"),)
    serializer_class = s.InvitationSerializer
    field_names = {"invitee_email": "email"}

    @describe("Invite someone to create an account", request=s.InvitationSerializer,
              responses={202: (s.TaskAcceptedSerializer, "Queued"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    def queue(self, request, data):
        return {"task_id": email_utils.send_invitation_email(request.user, data["email"], data["user_type"])}


class SendNotificationToUsersView(QueueView):
    """Send a notification to chosen users (admins)."""

    endpoint = "send_notification_to_users"
    throttle_classes = (throttle(PerUserThrottle, "notification_admin"),)
    serializer_class = s.NotificationToUsersSerializer

    @describe("Send a notification to chosen users", request=s.NotificationToUsersSerializer,
              responses={202: (s.TaskAcceptedSerializer, "Queued"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    def queue(self, request, data):
        return {"task_id": email_utils.send_notification_to_users(
            data["user_ids"], data["subject"], data["message"], email_type=data["email_type"],
            send_at=data["send_at"], expires_at=data["expires_at"])}


class SendNotificationToUserTypeView(QueueView):
    """Send a notification to every active user of one or more types (admins)."""

    endpoint = "send_notification_to_user_type"
    throttle_classes = (throttle(PerUserThrottle, "notification_admin"),)
    serializer_class = s.NotificationToUserTypesSerializer

    @describe("Send a notification to every active user of one or more types",
              request=s.NotificationToUserTypesSerializer,
              responses={202: (s.TaskIdsAcceptedSerializer, "One fan-out task per type"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    def queue(self, request, data):
        return {"task_ids": email_utils.send_notification_to_user_types(
            data["user_types"], data["subject"], data["message"], email_type=data["email_type"],
            send_at=data["send_at"], expires_at=data["expires_at"])}


class SystemStatusView(EmailAPIView):
    """Configuration findings, broker, workers, queues and recent outcomes (admins)."""

    endpoint = "system_status"

    @describe("Email system status for operators", responses={200: (None, "Status report")})
    def get(self, request):
        return Response(system_status())


class PreferencesView(EmailAPIView):
    """The signed-in user's notification categories: read them, or turn some on or off."""

    endpoint = "preferences"

    @describe("Your notification preferences", responses={200: (s.PreferencesSerializer, "Every category")},
              description="Every notification category with its label and whether you receive it. Account "
                          "emails (verification, password reset, invitations) are in no category.")
    def get(self, request):
        return Response({"categories": preferences.preferences_of(request.user)})

    @describe("Change your notification preferences", request=s.PreferenceChangesSerializer,
              responses={200: (s.PreferencesSerializer, "Every category, after the change"), 400: ERRORS},
              description="Only the categories given change. An unknown category or a value that is not "
                          "`true` or `false` is a 400 on `categories`, and nothing changes.")
    def put(self, request):
        serializer = s.PreferenceChangesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            state = preferences.set_preferences(request.user, serializer.validated_data["categories"],
                                                preferences.Source.API)
        return Response({"categories": state})


@method_decorator([transaction.non_atomic_requests,
                   sensitive_post_parameters("uid", "token", "code", "password", "new_password", "re_new_password")],
                  name="dispatch")
class FlowView(EmailAPIView):
    """Consume a link's token or a code: one uniform 400 for any bad one, field errors for bad input.

    Outside ``ATOMIC_REQUESTS``: a code's spent attempt must stay spent when the answer is
    an error (DRF rolls the request's transaction back on every handled exception).
    """

    authentication_classes = ()
    throttle_classes: tuple[type[BaseThrottle], ...] = (throttle(PerIPThrottle, "flow_ip"),)
    serializer_class: type[BaseSerializer] | None = None
    done = ""
    done_status: int = status.HTTP_200_OK

    def complete(self, data: dict) -> None:
        raise NotImplementedError

    @method_decorator(sensitive_variables())  # the body holds tokens, codes and passwords
    def post(self, request):
        assert self.serializer_class is not None, "a FlowView subclass sets serializer_class"
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.complete(dict(serializer.validated_data))
        return Response({"detail": self.done}, status=self.done_status)


class VerifyEmailView(FlowView):
    """Confirm an email address with the uid and token from the link."""

    endpoint = "verify_email"
    serializer_class = s.VerifyEmailSerializer
    done = "Your email address is confirmed."

    @describe("Confirm an email address with the link's uid and token", request=s.VerifyEmailSerializer,
              responses={200: (s.DetailSerializer, "Verified"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    @method_decorator(sensitive_variables())
    def complete(self, data):
        email_utils.verify_email(data["uid"], data["token"])


class ConfirmPasswordResetView(FlowView):
    """Set a new password with the uid and token from the link."""

    endpoint = "confirm_password_reset"
    serializer_class = s.ConfirmPasswordResetSerializer
    done = "Your password is changed."

    @describe("Set a new password with the link's uid and token", request=s.ConfirmPasswordResetSerializer,
              responses={200: (s.DetailSerializer, "Password changed"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    @method_decorator(sensitive_variables())
    def complete(self, data):
        email_utils.reset_password(data["uid"], data["token"], data["new_password"])


class AcceptInvitationView(FlowView):
    """Create the invited account with the token from the link."""

    endpoint = "accept_invitation"
    serializer_class = s.AcceptInvitationSerializer
    done = "Your account is ready."
    done_status = status.HTTP_201_CREATED

    @describe("Create the invited account", request=s.AcceptInvitationSerializer,
              responses={201: (s.DetailSerializer, "Account created"), 400: ERRORS})
    def post(self, request):
        return super().post(request)

    @method_decorator(sensitive_variables())
    def complete(self, data):
        token, password = data.pop("token"), data.pop("password")
        # Only fields the user model has: custom models need not have first/last names.
        profile = {k: v for k, v in data.items() if v and has_field(k)}
        email_utils.accept_invitation(token, password, **profile)


class VerifyEmailCodeView(FlowView):
    """Confirm an email address with the code from the verification email."""

    endpoint = "verify_email_code"
    serializer_class = s.VerifyEmailCodeSerializer
    throttle_classes = (throttle(PerIPThrottle, "flow_ip"), throttle(PerIPThrottle, "code_ip"),
                        throttle(PerAddressThrottle, "code_address"))
    done = "Your email address is confirmed."

    @describe("Confirm an email address with the emailed code", request=s.VerifyEmailCodeSerializer,
              responses={200: (s.DetailSerializer, "Verified"), 400: ERRORS},
              description="A wrong, expired, used or exhausted code and an unknown address get the same 400.")
    def post(self, request):
        return super().post(request)

    @method_decorator(sensitive_variables())
    def complete(self, data):
        email_utils.verify_email_with_code(data["email"], data["code"])


class ConfirmPasswordResetCodeView(FlowView):
    """Set a new password with the code from the reset email."""

    endpoint = "confirm_password_reset_code"
    serializer_class = s.ConfirmPasswordResetCodeSerializer
    throttle_classes = (throttle(PerIPThrottle, "flow_ip"), throttle(PerIPThrottle, "code_ip"),
                        throttle(PerAddressThrottle, "code_address"))
    done = "Your password is changed."

    @describe("Set a new password with the emailed code", request=s.ConfirmPasswordResetCodeSerializer,
              responses={200: (s.DetailSerializer, "Password changed"), 400: ERRORS},
              description="A wrong, expired, used or exhausted code and an unknown address get the same 400.")
    def post(self, request):
        return super().post(request)

    @method_decorator(sensitive_variables())
    def complete(self, data):
        email_utils.reset_password_with_code(data["email"], data["code"], data["new_password"])
