"""``{% load chartbuild %}`` in a project's own template."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.template import engines
from django.test import RequestFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = """{% load chartbuild %}<html><head>{% chartbuild_assets %}</head><body>
{% number "shop.orders_count" %}
{% chart "shop.revenue_per_month" %}
{% chart "users.signups_per_month" %}
{% chart "shop.nothing" %}
</body></html>"""


@pytest.fixture
def render(served_build):
    template = engines["django"].from_string(PAGE)

    def render(user):
        request = RequestFactory().get("/somewhere/")
        request.user = user
        return template.render({}, request)

    return render


def test_the_tags_show_what_the_user_may_see(render):
    shopper = User.objects.create_user("shopper")
    shopper.user_permissions.set(Permission.objects.filter(codename="view_order"))
    page = render(User.objects.get(pk=shopper.pk))
    assert '<script src="/charts/static/chartbuild.js" defer></script>' in page
    assert 'id="number-shop-orders_count"' in page
    assert '<span class="figure" title="3 orders">3</span>' in page
    assert 'data-spec-url="/charts/shop/revenue_per_month.vl.json"' in page
    assert '<img src="/charts/shop/revenue_per_month.svg?v=' in page  # without JavaScript
    assert 'data-state-url="/charts/shop/state.json"' in page  # live
    assert "signups_per_month" not in page  # staff only


def test_the_tags_render_nothing_for_others(render):
    for user in (AnonymousUser(), User.objects.create_user("somebody")):
        page = render(user)
        assert "figure" not in page and "number-" not in page
        assert "chartbuild.js" in page  # the assets tag alone


def test_numbers_in_the_page_are_never_localised(render, settings):
    settings.LANGUAGE_CODE = "de"
    settings.USE_THOUSAND_SEPARATOR = True
    settings.CHARTBUILD_LIVE_INTERVAL = 1.5
    staff = User.objects.create_user("boss", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_order"))
    page = render(User.objects.get(pk=staff.pk))
    assert 'data-interval-ms="1500"' in page
    assert 'data-value="3"' in page
