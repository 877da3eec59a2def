"""Who may see a chart or number: strings, names, callables, and failing closed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chartbuild.declare import catalog
from chartbuild.declare.registry import CALLABLE, Declaration
from chartbuild.site import permissions


def user(*, active=True, staff=False, authenticated=True, perms=()):
    return SimpleNamespace(
        is_active=active,
        is_staff=staff,
        is_authenticated=authenticated,
        has_perm=lambda perm: perm in perms,
    )


def generator(declared="", module_wide="", module="tests.generators.good"):
    declaration = Declaration("n", "number", "N", ("auth.user",), permission=declared)
    return catalog.Generator("good", module, None, (declaration,), permission=module_wide)


@pytest.mark.parametrize(
    ("permission", "who", "allowed"),
    [
        ("staff", user(staff=True), True),
        ("staff", user(staff=True, active=False), False),
        ("staff", user(), False),
        ("signed_in", user(), True),
        ("signed_in", user(authenticated=False, active=False), False),
        ("anyone", user(authenticated=False, active=False), True),
        ("shop.view_order", user(perms=("shop.view_order",)), True),
        ("shop.view_order", user(perms=("shop.view_order",), active=False), False),
        ("shop.view_order", user(staff=True), False),
    ],
)
def test_strings_and_names(permission, who, allowed):
    assert permissions.allows(permission, who) is allowed


def test_the_declaration_then_the_generator_then_the_default(settings):
    settings.CHARTBUILD_DEFAULT_PERMISSION = "signed_in"
    assert permissions.guarding(generator(), "n") == "signed_in"
    assert permissions.guarding(generator(module_wide="staff"), "n") == "staff"
    assert permissions.guarding(generator("anyone", "staff"), "n") == "anyone"


def test_a_permission_that_cannot_be_decided_lets_nobody_in(caplog):
    # the catalog says "a callable", but the module has none (or cannot be imported)
    assert not permissions.may_see(user(staff=True), generator(declared=CALLABLE), "n")
    missing = generator(declared=CALLABLE, module="tests.generators.missing")
    assert not permissions.may_see(user(staff=True), missing, "n")
    assert "nobody may" in caplog.text


def test_a_callable_that_raises_lets_nobody_in(settings):
    def profile_only(who):
        return who.profile.premium  # AnonymousUser has no profile

    settings.CHARTBUILD_DEFAULT_PERMISSION = profile_only
    assert not permissions.may_see(user(), generator(), "n")
    settings.CHARTBUILD_DEFAULT_PERMISSION = lambda who: True
    assert permissions.may_see(user(), generator(), "n")
