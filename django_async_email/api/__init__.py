"""The REST API (Django REST Framework, the optional ``drf`` extra)."""
