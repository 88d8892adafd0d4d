"""The platform's own user model: email login, a user type, a verified flag, and a manager
whose create_user() takes no user type (the case that used to end in a 500)."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager):
    def create_user(self, email, first_name="", last_name="", password=None):
        if not email:
            raise ValueError("Members need an email address.")
        member = self.model(email=self.normalize_email(email), first_name=first_name, last_name=last_name)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(self, email, password=None):
        member = self.create_user(email, password=password)
        member.is_staff = member.is_superuser = True
        member.user_type = Member.UserType.ADMIN
        member.save(using=self._db)
        return member


class Member(AbstractBaseUser, PermissionsMixin):
    class UserType(models.TextChoices):
        ARTIST = "Artist"
        PUBLISHER = "Publisher"
        STATION = "Station"
        ADMIN = "Admin"

    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    user_type = models.CharField(max_length=16, choices=UserType.choices, default=UserType.ARTIST)
    email_verified = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    objects = MemberManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def get_short_name(self):
        return self.first_name
