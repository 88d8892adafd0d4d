"""The REST endpoints: the six of the system this package generalises, plus the three flows.

Queued work answers 202 with the task id(s). The anonymous endpoints answer the same
bytes whatever the account state, and do the same work for every address.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .. import email_utils
from ..accounts.users import has_field
from ..accounts.verification import is_verified
from ..exceptions import InvalidEmailInput, TokenError
from ..status import system_status
from . import serializers as s
from .permissions import permission_classes_for
from .schema import describe
from .throttles import PerAddressThrottle, PerIPThrottle, PerUserThrottle, throttle

RESET_REQUESTED = "If an account uses this address, a password reset email is on its way."
ERRORS = (s.DetailSerializer, "Field errors, keyed by field name")


class EmailAPIView(APIView):
    """Permissions from settings per endpoint; our own throttles replace DRF's defaults."""

    endpoint = ""
    throttle_classes: tuple[type[BaseThrottle], ...] = ()

    def get_permissions(self):
        return [permission() for permission in permission_classes_for(self.endpoint)]

    def get_throttles(self):
        return [throttle_class() for throttle_class in self.throttle_classes]

    def bad_input(self, exc: InvalidEmailInput):
        return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)


def accepted(task_id) -> Response:
    return Response({"task_id": task_id}, status=status.HTTP_202_ACCEPTED)


class ResendVerificationView(EmailAPIView):
    """Send the signed-in user a new verification email."""

    endpoint = "resend_verification"
    throttle_classes = (throttle(PerIPThrottle, "verification_ip"), throttle(PerUserThrottle, "verification_user"))

    @describe("Send the signed-in user a new verification email", request=None,
              responses={202: (s.TaskAcceptedSerializer, "Queued"), 400: ERRORS})
    def post(self, request):
        if is_verified(request.user):
            return Response({"detail": "Your email address is already verified."}, status=400)
        try:
            return accepted(email_utils.send_verification_email(request.user))
        except InvalidEmailInput as exc:
            return self.bad_input(exc)


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
    #: Python API argument name -> request field name, where they differ.
    field_names: dict = {}

    def queue(self, request, data: dict) -> dict:
        raise NotImplementedError

    def post(self, request):
        assert self.serializer_class is not None, "a QueueView subclass sets serializer_class"
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            answer = self.queue(request, serializer.validated_data)
        except InvalidEmailInput as exc:
            field = self.field_names.get(exc.field, exc.field)
            return Response({field: exc.message_dict[exc.field]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(answer, status=status.HTTP_202_ACCEPTED)


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
            data["user_ids"], data["subject"], data["message"], email_type=data["email_type"])}


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
            data["user_types"], data["subject"], data["message"], email_type=data["email_type"])}


class SystemStatusView(EmailAPIView):
    """Configuration findings, broker, workers, queues and recent outcomes (admins)."""

    endpoint = "system_status"

    @describe("Email system status for operators", responses={200: (None, "Status report")})
    def get(self, request):
        return Response(system_status())


class FlowView(EmailAPIView):
    """Consume a link's token: one uniform 400 for any bad token, field errors for bad input."""

    authentication_classes = ()
    serializer_class: type[BaseSerializer] | None = None
    done = ""
    done_status: int = status.HTTP_200_OK

    def complete(self, data: dict) -> None:
        raise NotImplementedError

    def post(self, request):
        assert self.serializer_class is not None, "a FlowView subclass sets serializer_class"
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            self.complete(dict(serializer.validated_data))
        except TokenError as exc:
            return Response({"detail": str(exc)}, status=400)
        except InvalidEmailInput as exc:
            return self.bad_input(exc)
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

    def complete(self, data):
        token, password = data.pop("token"), data.pop("password")
        # Only fields the user model has: custom models need not have first/last names.
        profile = {k: v for k, v in data.items() if v and has_field(k)}
        email_utils.accept_invitation(token, password, **profile)
