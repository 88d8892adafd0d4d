from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class PlatformUserAdmin(UserAdmin):
    list_display = ("username", "email", "user_type", "email_verified", "language", "is_active")
    list_filter = ("user_type", "email_verified", "language", "is_active", "is_staff")
    fieldsets = UserAdmin.fieldsets + (("Platform", {"fields": ("user_type", "email_verified", "language")}),)
