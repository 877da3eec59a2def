"""``manage.py demo_users``: the demo's two sign-ins, made (or reset) and printed.

- ``staff`` sees every chart (a superuser);
- ``shopper`` is no staff member and holds one permission, ``shop.view_order``: the
  ``shop`` generator's charts only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand

USERS = {
    # username: (password, superuser, permissions)
    "staff": ("staff-demo", True, []),
    "shopper": ("shopper-demo", False, ["view_order"]),
}


class Command(BaseCommand):
    help = "Create the demo's staff and shopper users (their passwords are reset) and print them."

    def handle(self, *args: Any, **options: Any) -> None:
        for username, (password, superuser, codenames) in USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = superuser
            user.is_active = True
            user.set_password(password)
            user.save()
            user.user_permissions.set(
                Permission.objects.filter(content_type__app_label="shop", codename__in=codenames)
            )
            self.stdout.write(f"  {username:<8} password {password}")
