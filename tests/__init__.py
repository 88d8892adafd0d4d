# Make the test Celery app current in every process that loads the test settings.
