"""The platform's own API pieces: its error envelope and its sign-up view."""

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from django_async_email.email_utils import send_verification_email

from .accounts.models import Member


def envelope_exception_handler(exc, context):
    """Every error of the platform's API in one shape: {"success": false, "status": ..., "errors": ...}."""
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"success": False, "status": response.status_code, "errors": response.data}
    return response


class SignUpSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(min_length=10)
    first_name = serializers.CharField(required=False, default="")


class SignUpView(APIView):
    """The platform's sign-up: create the member, queue the verification email (a code)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        data = SignUpSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = Member.objects.create_user(data.validated_data["email"], data.validated_data["first_name"],
                                            password=data.validated_data["password"])
        send_verification_email(member)
        return Response({"success": True, "id": member.pk}, status=status.HTTP_201_CREATED)
