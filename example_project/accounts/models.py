"""The platform's user: one account model for artists, stations, publishers and admins."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    class UserType(models.TextChoices):
        ARTIST = "Artist", _("Artist")
        STATION = "Station", _("Station")
        PUBLISHER = "Publisher", _("Publisher")
        ADMIN = "Admin", _("Admin")

    # Unique so that one address is one account; Django's check is case-sensitive, so the
    # package compares addresses case-insensitively where it matters (invitations).
    email = models.EmailField(_("email address"), unique=True)
    user_type = models.CharField(_("user type"), max_length=32, choices=UserType.choices, default=UserType.ARTIST)
    email_verified = models.BooleanField(_("email verified"), default=False)
    language = models.CharField(_("language"), max_length=8, blank=True, default="en")

    def __str__(self):
        return self.email or self.username
