"""The charts in the Django site, through the test client, over a real build."""

from __future__ import annotations

import json
import re
import sys

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(served_build):
    """A built copy of the demo's generators, served by this process."""
    return served_build


def client_for(username: str | None, *, staff: bool = False, perms: tuple[str, ...] = ()) -> Client:
    client = Client()
    if username is not None:
        user = User.objects.create_user(username, password="pw", is_staff=staff)
        user.user_permissions.set(Permission.objects.filter(codename__in=perms))
        client.force_login(user)
    return client


def urls(generator: str, number: str, chart: str) -> list[str]:
    base = f"/charts/{generator}"
    return [
        f"{base}/",
        f"{base}/state.json",
        f"{base}/{chart}/",
        f"{base}/{number}/",
        f"{base}/{chart}.vl.json",
        f"{base}/{chart}.svg",
        f"{base}/{chart}.png",
        f"{base}/{chart}.csv",
        f"{base}/{number}.json",
    ]


SHOP = urls("shop", "orders_count", "revenue_per_month")
USERS = urls("users", "total_users", "signups_per_month")


def test_anonymous_visitors_are_sent_to_the_login_page(site):
    client = client_for(None)
    for url in ["/charts/", "/charts/manifest.json", *SHOP, *USERS]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/charts/login/?next=")


def test_staff_see_every_url(site):
    client = client_for("boss", staff=True, perms=("view_order",))
    for url in ["/charts/", "/charts/manifest.json", *SHOP, *USERS]:
        response = client.get(url)
        assert response.status_code == 200, url
    index = client.get("/charts/").content.decode()
    assert "Shop" in index and "Users" in index


def test_a_shop_user_sees_the_shop_only(site):
    client = client_for("shopper", perms=("view_order",))
    for url in SHOP:
        assert client.get(url).status_code == 200, url
    for url in USERS:
        assert client.get(url).status_code == 404, url
    entries = client.get("/charts/manifest.json").json()["entries"]
    assert entries and {e["generator"] for e in entries} == {"shop"}
    index = client.get("/charts/").content.decode()
    assert "/charts/shop/" in index and "/charts/users/" not in index


def staff_only_orders_by_status(site) -> None:
    """Let staff alone see the shop's orders_by_status, and build."""
    source = site.gens.joinpath("shop.py")
    source.write_text(
        source.read_text().replace(
            "@chart(models=[orders])\ndef orders_by_status",
            "@chart(models=[orders], permission='staff')\ndef orders_by_status",
        )
    )
    assert site.run().returncode == 0


def test_a_dashboard_shows_only_what_the_user_may_see(site):
    staff_only_orders_by_status(site)
    shopper = client_for("shopper", perms=("view_order",)).get("/charts/shop/").content.decode()
    assert "revenue_per_month" in shopper and "orders_by_status" not in shopper
    boss = client_for("boss", staff=True, perms=("view_order",))
    assert "orders_by_status" in boss.get("/charts/shop/").content.decode()
    assert (
        client_for("shopper2", perms=("view_order",))
        .get("/charts/shop/orders_by_status.svg")
        .status_code
        == 404
    )


TRAVERSALS = [
    "/charts/shop/../users/total_users.json",
    "/charts/shop/%2e%2e/users/total_users.json",
    "/charts/shop/..%2fusers/total_users.json",
    "/charts/shop/revenue_per_month.html",
    "/charts/shop/revenue_per_month.vl.json/..",
    "/charts/../state/catalog.json",
    "/charts/static/../../manifest.json",
    "/charts/shop/orders_count.svg",
    "/charts/nothing/",
    "/charts/shop/nothing/",
]


def test_paths_outside_the_declared_outputs_are_not_found(site):
    client = client_for("boss", staff=True, perms=("view_order",))
    for url in TRAVERSALS:
        assert client.get(url).status_code == 404, url


def test_not_found_is_a_page_of_the_site_with_a_way_back_and_a_sign_out(site):
    shopper = client_for("shopper", perms=("view_order",))
    for url, status, says in [
        ("/charts/users/", 404, "Not found"),
        ("/charts/nothing/", 404, "Not found"),
        ("/charts/shop/nothing/", 404, "Not found"),
    ]:
        response = shopper.get(url)
        assert response.status_code == status, url
        page = response.content.decode()
        assert says in page, url
        assert 'href="/charts/"' in page and "Back to the charts" in page, url
        assert 'action="/charts/logout/"' in page and "Sign out" in page, url
        assert "chartbuild.css" in page and 'rel="icon"' in page, url


def test_without_a_login_url_of_their_own_visitors_sign_in_on_chartbuilds_page(site, settings):
    redirect = client_for(None).get("/charts/shop/")
    assert redirect["Location"] == "/charts/login/?next=/charts/shop/"
    client = Client()
    page = client.get(redirect["Location"]).content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    User.objects.create_superuser("boss", password="pw")
    signed_in = client.post(
        "/charts/login/", {"username": "boss", "password": "pw", "next": "/charts/shop/"}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/charts/shop/"
    assert client.get("/charts/shop/").status_code == 200
    signed_out = client.post("/charts/logout/")
    assert signed_out.status_code == 302 and signed_out["Location"] == "/charts/"
    assert client.get("/charts/shop/").status_code == 302


@pytest.mark.parametrize(
    ("login_url", "location"),
    [
        ("admin:login", "/admin/login/"),
        ("https://sso.example.com/login", "https://sso.example.com/login"),
    ],
)
def test_a_login_url_the_project_sets_is_kept(site, settings, login_url, location):
    settings.LOGIN_URL = login_url
    redirect = client_for(None).get("/charts/shop/")
    assert redirect["Location"].startswith(f"{location}?next=")
    # chartbuild's own sign-in page sends its visitors there too (two factors, SSO...)
    found = Client().get("/charts/login/?next=/charts/shop/")
    assert found.status_code == 302 and found["Location"].startswith(f"{location}?next=")


def test_a_not_found_page_signs_out(site):
    client = client_for("shopper", perms=("view_order",))
    assert client.get("/charts/users/").status_code == 404
    assert client.post("/charts/logout/").status_code == 302
    assert client.get("/charts/users/").status_code == 302  # to the sign-in page


def unmasked(page: bytes) -> bytes:
    """``page`` without its CSRF token (masked afresh on every page)."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", page)


def test_a_name_one_may_not_see_answers_as_one_that_does_not_exist(site):
    staff_only_orders_by_status(site)
    shopper = client_for("shopper", perms=("view_order",))
    for hidden, missing in [
        ("/charts/users/", "/charts/nobody/"),
        ("/charts/users/total_users/", "/charts/nobody/total_users/"),
        ("/charts/users/total_users.json", "/charts/nobody/total_users.json"),
        ("/charts/users/state.json", "/charts/nobody/state.json"),
        ("/charts/shop/orders_by_status/", "/charts/shop/orders_by_nothing/"),
        ("/charts/shop/orders_by_status.svg", "/charts/shop/orders_by_nothing.svg"),
    ]:
        seen, absent = shopper.get(hidden), shopper.get(missing)
        assert (seen.status_code, absent.status_code) == (404, 404), hidden
        assert unmasked(seen.content) == unmasked(absent.content), hidden
        assert dict(seen.headers) == dict(absent.headers), hidden
    boss = client_for("boss", staff=True)  # staff without shop.view_order read why
    assert (
        "you may not see shop.revenue_per_month"
        in boss.get("/charts/shop/revenue_per_month/").content.decode()
    )


def test_only_staff_read_why_something_is_not_found(site):
    shopper = client_for("shopper", perms=("view_order",))
    assert "has no chart or number" not in shopper.get("/charts/shop/nothing/").content.decode()
    boss = client_for("boss", staff=True)
    assert "has no chart or number" in boss.get("/charts/shop/nothing/").content.decode()


def test_a_conditional_get_repeats_with_304(site):
    client = client_for("boss", staff=True, perms=("view_order",))
    for url in [
        "/charts/shop/revenue_per_month.svg",
        "/charts/shop/state.json",
        "/charts/manifest.json",
    ]:
        first = client.get(url)
        assert first.status_code == 200
        assert first["ETag"]
        again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304, url
    svg = client.get("/charts/shop/revenue_per_month.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    since = client.get(
        "/charts/shop/revenue_per_month.svg", HTTP_IF_MODIFIED_SINCE=svg["Last-Modified"]
    )
    assert since.status_code == 304


def test_the_state_changes_when_a_chart_is_rebuilt(site):
    from demo.shop.models import Order

    client = client_for("boss", staff=True, perms=("view_order",))
    before = client.get("/charts/shop/state.json")
    Order.objects.update(quantity=2, amount="19.00")
    assert site.run().returncode == 0
    after = client.get("/charts/shop/state.json", HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    old, new = before.json()["items"], after.json()["items"]
    assert new["revenue_per_month"]["version"] != old["revenue_per_month"]["version"]
    assert new["total_revenue"]["number"]["value"] == pytest.approx(57.0)


def test_a_chart_never_built_is_a_clear_404(site, settings, tmp_path):
    settings.CHARTBUILD_OUTPUT_DIR = str(tmp_path / "empty")
    client = client_for("boss", staff=True, perms=("view_order",))
    page = client.get("/charts/shop/revenue_per_month/")
    assert page.status_code == 404
    assert b"has not been built yet" in page.content
    assert client.get("/charts/shop/revenue_per_month.svg").status_code == 404


def test_the_web_server_sends_the_file_when_told_to(site, settings):
    client = client_for("boss", staff=True, perms=("view_order",))
    settings.CHARTBUILD_SENDFILE = "X-Accel-Redirect"
    settings.CHARTBUILD_SENDFILE_URL = "/internal/charts"
    response = client.get("/charts/shop/revenue_per_month.png")
    assert response["X-Accel-Redirect"] == "/internal/charts/shop/revenue_per_month.png"
    assert response.content == b""
    settings.CHARTBUILD_SENDFILE = "X-Sendfile"
    response = client.get("/charts/shop/revenue_per_month.png")
    assert response["X-Sendfile"] == str(site.out / "shop" / "revenue_per_month.png")
    denied = client_for("nobody").get("/charts/shop/revenue_per_month.png")
    assert denied.status_code == 404 and "X-Sendfile" not in denied


def test_anyone_may_be_let_in(site, settings):
    settings.CHARTBUILD_DEFAULT_PERMISSION = "anyone"
    client = client_for(None)
    assert client.get("/charts/users/").status_code == 200
    assert client.get("/charts/users/total_users.json").status_code == 200
    assert client.get("/charts/shop/").status_code == 302  # PERMISSION of the shop generator
    entries = client.get("/charts/manifest.json").json()["entries"]
    assert {e["generator"] for e in entries} == {"users"}


def test_assets_are_served_to_everybody(site):
    client = client_for(None)
    for name in ("vega.js", "chartbuild.js", "chartbuild.css"):
        assert client.get(f"/charts/static/{name}").status_code == 200
    assert client.get("/charts/static/other.js").status_code == 404


def test_the_admin_index_links_staff_to_the_charts(site):
    admin = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    index = client.get("/admin/").content.decode()
    assert "/admin/chartbuild/charts/" in index
    assert client.get("/admin/chartbuild/charts/")["Location"] == "/charts/"


def test_the_manifest_json_is_the_build_s_for_staff(site):
    client = client_for("boss", staff=True, perms=("view_order",))
    served = client.get("/charts/manifest.json").json()["entries"]
    built = json.loads((site.out / "manifest.json").read_text())["entries"]
    assert served == built


def test_a_chart_whose_build_failed_is_marked_stale_and_keeps_its_last_output(site):
    from demo.shop.models import Order

    client = client_for("boss", staff=True, perms=("view_order",))
    svg = client.get("/charts/shop/orders_by_status.svg").getvalue()
    site.break_function("shop", "orders_by_status", "1 / 0")
    Order.objects.update(status="shipped")
    assert site.run().returncode != 0
    for module in [m for m in sys.modules if m.startswith("gens.")]:
        del sys.modules[module]  # this process reads the broken source's declarations
    state = client.get("/charts/shop/state.json").json()["items"]
    assert state["orders_by_status"]["stale"] is True
    assert state["revenue_per_month"]["stale"] is False
    page = client.get("/charts/shop/").content.decode()
    assert 'class="chart stale" id="chart-shop-orders_by_status"' in page
    assert client.get("/charts/shop/orders_by_status.svg").getvalue() == svg


def test_what_only_staff_and_nobody_see(site):
    shopper = client_for("shopper", perms=("view_order",))
    entries = shopper.get("/charts/manifest.json").json()["entries"]
    assert entries and not any({"models", "reads", "error"} & set(e) for e in entries)
    assert b"Reads shop.order" not in shopper.get("/charts/shop/revenue_per_month/").content
    anonymous = client_for(None)
    for url in ("/charts/nothing/", "/charts/shop/nothing/", "/charts/shop/nothing.svg"):
        assert anonymous.get(url).status_code == 302  # as for names that exist
    assert shopper.post("/charts/shop/").status_code == 405
    root = User.objects.create_superuser("root", password="pw")
    admin = Client()
    admin.force_login(root)
    assert admin.get("/admin/chartbuild/charts/1/change/").status_code == 404


def test_a_poll_of_the_state_reads_each_items_record_once(site, monkeypatch):
    from chartbuild.site import items

    reads = []
    real = items.outputs.read_record

    def counted(generator, name, *args):
        reads.append(name)
        return real(generator, name, *args)

    monkeypatch.setattr(items.outputs, "read_record", counted)
    found = client_for("boss", staff=True).get("/charts/users/state.json").json()["items"]
    assert sorted(reads) == sorted(found)
