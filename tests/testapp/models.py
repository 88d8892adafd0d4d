"""A custom user model shaped like the seed platform's: user types, a verified flag, a language."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    class UserType(models.TextChoices):
        ARTIST = "Artist"
        STATION = "Station"
        PUBLISHER = "Publisher"
        ADMIN = "Admin"

    email = models.EmailField(blank=True)
    user_type = models.CharField(max_length=32, choices=UserType.choices, default=UserType.ARTIST)
    email_verified = models.BooleanField(default=False)
    language = models.CharField(max_length=8, blank=True)

    class Meta:
        swappable = "AUTH_USER_MODEL"
