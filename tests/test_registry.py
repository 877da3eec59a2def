import types

from django.contrib.auth.models import User

from chartbuild import chart, number
from chartbuild.declare.registry import Declaration, declarations, model_label


def test_a_chart_takes_its_name_from_the_function_and_its_title_from_the_docstring():
    @chart(models=[User, "shop.Order"])
    def signups():
        """Sign-ups per month

        More words.
        """

    assert signups.__chartbuild__ == Declaration(
        name="signups",
        kind="chart",
        title="Sign-ups per month",
        models=("auth.user", "shop.order"),
        label="Sign-ups per month",
    )


def test_a_number_takes_its_title_from_its_label():
    @number(models=["auth.User"], label="Users", unit="people", name="user-count")
    def count():
        return 1

    declaration = count.__chartbuild__
    assert (declaration.name, declaration.kind, declaration.title) == (
        "user-count",
        "number",
        "Users",
    )
    assert declaration.unit == "people"
    assert count() == 1  # the function itself is unchanged


def test_without_docstring_or_title_the_name_becomes_the_title():
    @chart(models=[User])
    def orders_by_status():
        pass

    assert orders_by_status.__chartbuild__.title == "Orders by status"


def test_a_generator_declares_only_its_own_functions_in_source_order():
    module = types.ModuleType("gen")

    @number(models=[User])
    def second():
        pass

    @number(models=[User])
    def first():
        pass

    first.__module__ = second.__module__ = "gen"
    imported = number(models=[User])(lambda: 1)  # declared elsewhere, imported here
    module.second, module.first, module.imported = second, first, imported
    assert [d.name for d, _ in declarations(module)] == ["second", "first"]


def test_model_labels_are_lower_case():
    assert model_label(User) == "auth.user"
    assert model_label("Shop.Order") == "shop.order"
