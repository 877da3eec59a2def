"""A save() never fails because of chartbuild's setup: mqueue's receivers are guarded."""

import json
import logging

import pytest
from django.contrib.sessions.models import Session
from django.db import DatabaseError
from django.utils import timezone
from mqueue import signals as mqueue_signals
from mqueue.models import MEvent

from chartbuild.capture import receivers
from chartbuild.checks import check_configuration
from demo.shop.models import Order, Product

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def partial_admin(settings):
    settings.ROOT_URLCONF = "tests.urls_partial_admin"


def test_a_model_without_admin_page_saves_and_its_chart_is_rebuilt(
    build, partial_admin, caplog, monkeypatch
):
    monkeypatch.setattr(receivers, "_logged", set())
    order = Order.objects.first()
    order.status = "cancelled"
    with caplog.at_level(logging.WARNING, logger="chartbuild.capture.receivers"):
        order.save()  # mqueue raises NoReverseMatch computing the admin URL: guarded
        Order.objects.create(product=Product.objects.get(), status="paid", amount="5.00")
    assert Order.objects.get(pk=order.pk).status == "cancelled"
    assert "mqueue recorded no event for shop.Order: NoReverseMatch" in caplog.text
    assert caplog.text.count("NoReverseMatch") == 1  # once per model and cause
    result = build.run()
    assert result.returncode == 0
    assert "shop.orders_by_status" in result.charts
    count = json.loads((build.out / "shop" / "orders_count.json").read_text())["value"]
    assert count == Order.objects.count() == 4


def test_check_names_the_models_without_admin_page(partial_admin):
    found = {m.obj._meta.label: m for m in check_configuration() if m.id == "chartbuild.W003"}
    assert set(found) == {"auth.User", "shop.Order"}  # products have their page
    assert "'admin:shop_order_change' does not reverse" in found["shop.Order"].msg
    assert "admin.site.register" in found["shop.Order"].hint


def test_a_primary_key_mqueue_cannot_store_is_skipped_and_reported(settings, caplog):
    settings.MQUEUE_AUTOREGISTER = [("django.contrib.sessions.models.Session", ["c", "u", "d"])]
    (warning,) = [m for m in check_configuration() if m.id == "chartbuild.W005"]
    assert "primary key 'session_key' (CharField)" in warning.msg
    session = Session(session_key="k" * 32, session_data="", expire_date=timezone.now())
    guard = receivers.guarded(mqueue_signals.mmessage_create)
    with caplog.at_level(logging.WARNING, logger="chartbuild.capture.receivers"):
        guard(Session, instance=session, created=True)
    assert MEvent.objects.count() == 0
    assert "its primary key is not an integer mqueue can store" in caplog.text


def test_database_errors_still_reach_the_caller(monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("the event insert failed")

    guard = receivers.guarded(broken)
    with pytest.raises(DatabaseError):
        guard(Product, instance=Product(pk=1), created=True)


def test_mqueues_receivers_of_tracked_models_are_the_guarded_ones():
    from django.db.models.signals import post_save

    live, _ = post_save._live_receivers(Order)
    guarded = [r for r in live if getattr(r, "chartbuild_guards", None)]
    assert {r.chartbuild_guards for r in guarded} == {
        mqueue_signals.mmessage_create,
        mqueue_signals.mmessage_update,
    }
    assert mqueue_signals.mmessage_create not in live
