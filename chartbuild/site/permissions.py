"""Who may see a chart or number on the site.

A permission is one of:

- a Django permission string, ``"app_label.codename"`` (``"shop.view_order"``), checked
  with ``user.has_perm()`` (superusers have them all);
- one of the names ``"staff"`` (active staff members), ``"signed_in"`` (any signed-in
  user) and ``"anyone"`` (anonymous visitors too);
- a callable taking the user and returning whether they may see it.

A chart or number declares it with ``permission=`` in its decorator; a generator for all
of its charts with a module-level ``PERMISSION``; the rest take
``CHARTBUILD_DEFAULT_PERMISSION`` (default ``"staff"``). The catalog keeps strings (so
the system checks validate them without importing anything); a callable is read from
the generator's module when a request needs it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from chartbuild import conf
from chartbuild.declare import catalog
from chartbuild.declare.registry import CALLABLE, PERMISSION_ATTRIBUTE, Permission

logger = logging.getLogger(__name__)

#: ``app_label.codename``.
PERMISSION_STRING = re.compile(r"[A-Za-z_]\w*\.\w+", re.ASCII)


def staff(user: Any) -> bool:
    """Active staff members (the default)."""
    return bool(user.is_active and user.is_staff)


def signed_in(user: Any) -> bool:
    """Any signed-in, active user."""
    return bool(user.is_authenticated and user.is_active)


def anyone(user: Any) -> bool:
    """Everybody, anonymous visitors included."""
    return True


NAMED: dict[str, Callable[[Any], bool]] = {
    "staff": staff,
    "signed_in": signed_in,
    "anyone": anyone,
}


def guarding(generator: catalog.Generator, name: str) -> Permission:
    """The permission that guards chart or number ``name`` of ``generator``."""
    declared = generator.get(name).permission
    if declared == CALLABLE:
        function = catalog.function(generator, name)
        found = getattr(function, PERMISSION_ATTRIBUTE, None)
        if not callable(found):
            raise LookupError(f"{generator.module}.{name} has no permission callable any more")
        return found  # type: ignore[no-any-return]
    if declared:
        return declared
    if generator.permission == CALLABLE:
        module = catalog.import_generator(generator.module)
        found = getattr(module, "PERMISSION", None)
        if not callable(found):
            raise LookupError(f"{generator.module} has no PERMISSION callable any more")
        return found  # type: ignore[no-any-return]
    return generator.permission or conf.default_permission()


def allows(permission: Permission, user: Any) -> bool:
    """Whether ``user`` may see what ``permission`` guards."""
    if isinstance(permission, str):
        if permission in NAMED:
            return NAMED[permission](user)
        return bool(user.is_active and user.has_perm(permission))
    return bool(permission(user))


def may_see(user: Any, generator: catalog.Generator, name: str) -> bool:
    """Whether ``user`` may see chart or number ``name`` of ``generator``.

    Fails closed: a permission that cannot be found (a generator that no longer imports)
    or a callable that raises lets nobody in, and is logged.
    """
    try:
        return allows(guarding(generator, name), user)
    except Exception:
        logger.exception("cannot decide who may see %s.%s: nobody may", generator.name, name)
        return False


def problem(permission: Permission, known: set[str]) -> str:
    """What is wrong with ``permission`` ("" when nothing is), given the known permissions."""
    if not isinstance(permission, str):
        return "" if callable(permission) else f"{permission!r} is neither a string nor a callable"
    if permission in NAMED or permission in ("", CALLABLE):  # "": none declared
        return ""
    if not PERMISSION_STRING.fullmatch(permission):
        return (
            f"{permission!r} is neither a permission 'app_label.codename' nor one of "
            f"{', '.join(repr(n) for n in NAMED)}"
        )
    if permission not in known:
        return f"{permission!r} is not a permission of any installed model"
    return ""


def known() -> set[str]:
    """Every permission string the installed models define (their defaults and ``permissions``)."""
    from django.apps import apps

    found: set[str] = set()
    for model in apps.get_models():
        meta = model._meta
        codenames = [f"{action}_{meta.model_name}" for action in meta.default_permissions]
        codenames += [codename for codename, _ in meta.permissions]
        found.update(f"{meta.app_label}.{codename}" for codename in codenames)
    return found
