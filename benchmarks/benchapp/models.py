"""A user model shaped like the seed platform's: a user type on the user."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    class UserType(models.TextChoices):
        ARTIST = "Artist"
        STATION = "Station"
        PUBLISHER = "Publisher"
        ADMIN = "Admin"

    user_type = models.CharField(max_length=32, choices=UserType.choices, default=UserType.ARTIST)

    class Meta:
        swappable = "AUTH_USER_MODEL"
