"""Request bodies (the seed's field names) and answers."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from ..accounts.users import user_types_in_use
from ..conf import app_settings
from ..exceptions import InvalidEmailInput
from ..outbox import validation
from ..outbox.schedule import clean_schedule


def _run(func, field, value):
    try:
        return func(field, value)
    except InvalidEmailInput as exc:
        raise serializers.ValidationError(exc.message_dict[field]) from None


class EmailField(serializers.CharField):
    def to_internal_value(self, data):
        return _run(validation.clean_address, self.field_name, super().to_internal_value(data))


class PasswordResetRequestSerializer(serializers.Serializer):
    email = EmailField(max_length=254)


class InvitationSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    #: Omitted: the first configured type, as in the Python API.
    user_type = serializers.CharField(required=False, allow_blank=True, default=None)

    def validate_user_type(self, value):
        if user_types_in_use() and value is not None:
            return _run(validation.clean_user_type, "user_type", value)
        return value


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its UTC offset. DRF would read a time without one in
    the server's TIME_ZONE, which the client may not know; the Python API refuses naive
    datetimes for the same reason."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = parse_datetime(value.strip())
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError("Give the time with its UTC offset, e.g. 2030-01-01T09:00:00Z.",
                                                  code="naive")
        return super().to_internal_value(value)


class NotificationFields(serializers.Serializer):
    subject = serializers.CharField(max_length=validation.MAX_SUBJECT_LENGTH, trim_whitespace=False)
    message = serializers.CharField(trim_whitespace=False)
    email_type = serializers.CharField(max_length=validation.MAX_EMAIL_TYPE_LENGTH, default="notification")
    send_at = AwareDateTimeField(required=False, allow_null=True, default=None,
                                 help_text="Not to be sent before this time (ISO 8601 with a UTC offset).")
    expires_at = AwareDateTimeField(required=False, allow_null=True, default=None,
                                    help_text="Not to be sent after this time: still unsent then, it is "
                                              "recorded `expired`. Later than now and than send_at.")

    def validate(self, attrs):
        try:
            clean_schedule(attrs.get("send_at"), attrs.get("expires_at"))
        except InvalidEmailInput as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def validate_subject(self, value):
        return _run(validation.clean_subject, "subject", value)

    def validate_message(self, value):
        return _run(validation.clean_message, "message", value)

    def validate_email_type(self, value):
        return _run(validation.clean_email_type, "email_type", value)


class NotificationToUsersSerializer(NotificationFields):
    user_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                     allow_empty=False)

    def validate_user_ids(self, value):
        limit = app_settings.MAX_USER_IDS
        if len(value) > limit:
            raise serializers.ValidationError(f"At most {limit} user ids per request.")
        return list(dict.fromkeys(value))


class NotificationToUserTypesSerializer(NotificationFields):
    user_types = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    user_type = serializers.CharField(required=False)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        types = attrs.pop("user_types", None) or ([attrs.pop("user_type")] if "user_type" in attrs else None)
        if not types:
            raise serializers.ValidationError({"user_types": ["Give user_types (a list) or user_type."]})
        attrs.pop("user_type", None)
        try:
            attrs["user_types"] = validation.clean_user_types("user_types", types)
        except InvalidEmailInput as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class VerifyEmailSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)


class NewPasswordFields(serializers.Serializer):
    """A new password, with an optional confirmation that must match when it is sent."""

    new_password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    re_new_password = serializers.CharField(max_length=4096, trim_whitespace=False, required=False,
                                            write_only=True, style={"input_type": "password"})

    def validate(self, attrs):
        attrs = super().validate(attrs)
        again = attrs.pop("re_new_password", None)
        if again is not None and again != attrs["new_password"]:
            raise serializers.ValidationError({"re_new_password": ["The two passwords differ."]})
        return attrs


class ConfirmPasswordResetSerializer(NewPasswordFields, VerifyEmailSerializer):
    pass


class VerifyEmailCodeSerializer(serializers.Serializer):
    email = EmailField(max_length=254)
    code = serializers.CharField(max_length=32, trim_whitespace=True)


class ConfirmPasswordResetCodeSerializer(NewPasswordFields, VerifyEmailCodeSerializer):
    pass


class ResendVerificationSerializer(serializers.Serializer):
    email = EmailField(max_length=254, help_text="Without a signed-in user: the address to send to.")


class AcceptInvitationSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=128)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class TaskAcceptedSerializer(serializers.Serializer):
    task_id = serializers.CharField()


class TaskIdsAcceptedSerializer(serializers.Serializer):
    task_ids = serializers.ListField(child=serializers.CharField())


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PreferenceSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="The category key (ASYNC_EMAIL['CATEGORIES']).")
    # The metaclass takes declared fields off the class, so this shadows no Field.label.
    label = serializers.CharField(help_text="What to show a person.")  # type: ignore[assignment]
    subscribed = serializers.BooleanField(help_text="Whether the user receives this category's notifications.")


class PreferencesSerializer(serializers.Serializer):
    categories = PreferenceSerializer(many=True)


class PreferenceChangesField(serializers.DictField):
    """``{category key: true or false}``, passed on as sent: the Python API refuses an unknown
    key or a value that is not a JSON boolean (``"false"`` and ``0`` are not), naming
    ``categories``, so the answer comes through the same error path as every other."""

    child = serializers.BooleanField()

    def to_internal_value(self, data):
        return data


class PreferenceChangesSerializer(serializers.Serializer):
    categories = PreferenceChangesField(
        help_text="Category key to whether the user receives it; only the keys given change.")
