import django
from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        if django.VERSION < (5, 1):
            _begin_sqlite_transactions_immediately()


def _begin_sqlite_transactions_immediately():
    """What Django 5.1's ``"transaction_mode": "IMMEDIATE"`` does, for Django 4.2.

    The test process and the worker write to one SQLite file. A deferred transaction that
    reads and then writes fails at once with "database is locked" when the other holds the
    lock; an immediate one waits for it (up to the ``timeout`` option).
    """
    from django.db.backends.sqlite3.base import DatabaseWrapper

    def start_transaction(self):
        self.cursor().execute("BEGIN IMMEDIATE")

    DatabaseWrapper._start_transaction_under_autocommit = start_transaction
