import pytest
from django_async_email import email_utils
from django_async_email.models import OutboxEmail

@pytest.mark.django_db(transaction=True)
def test_int(make_user, celery_worker, smtp, wait_for):
    u = make_user(user_type="Artist")
    tid = email_utils.send_verification_email(u)
    wait_for(lambda: OutboxEmail.objects.filter(status="sent").exists(), timeout=20)
    assert len(smtp.received) == 1
    ids = email_utils.send_notification_to_user_types(["Artist"], "Hi", "msg")
    wait_for(lambda: OutboxEmail.objects.filter(status="sent").count() == 2, timeout=20)
