"""The site's pages in a real browser: headless Chromium through its WebDriver, offline.

Signed in as the demo's staff user, a dashboard stays open while a change is saved and
built; its number and its chart change without a reload. The pages fit a wide screen
and a phone's, and follow the reader's dark theme.
"""

from __future__ import annotations

import io
import os
import shutil
import time

import pytest
from django.core.management import call_command

from demo.shop.management.commands.demo_users import USERS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.serial]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def driver(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CHARTBUILD_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium and chromedriver are required (CHARTBUILD_REQUIRE_BROWSER=1)")
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline but the server
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


@pytest.fixture
def served(served_build, live_server):
    """The build's outputs served by a live server, at 127.0.0.1 (no name to resolve)."""
    call_command("demo_users", stdout=io.StringIO())
    return live_server.url.replace("localhost", "127.0.0.1")


def wait_until(condition, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def sign_in(driver, url: str, next_path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}{next_path}")
    assert "/accounts/login/" in driver.current_url  # sent to the login page first
    username = "staff"
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(USERS[username][0])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: driver.current_url == f"{url}{next_path}", timeout=10)


def drawn(driver) -> int:
    return int(
        driver.execute_script("return document.querySelectorAll('figure.chart.live svg').length")
    )


def all_drawn(driver) -> int:
    """Wait until every chart of the page is drawn by Vega; return how many there are."""
    figures = int(driver.execute_script("return document.querySelectorAll('figure.chart').length"))
    # charts are drawn as they come into view: scroll past each of them
    for index in range(figures):
        driver.execute_script(
            f"document.querySelectorAll('figure.chart')[{index}].scrollIntoView()"
        )
        time.sleep(0.1)
    try:
        wait_until(lambda: drawn(driver) == figures, timeout=20)
    except AssertionError:
        errors = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.chart'))"
            ".map(f => f.id + ': ' + (f.dataset.error || f.className))"
        )
        raise AssertionError(f"{driver.current_url}: not every chart drawn: {errors}") from None
    return figures


def test_an_open_dashboard_follows_a_rebuild(driver, served, build):
    from demo.shop.models import Order, Product

    sign_in(driver, served, "/charts/shop/")
    assert all_drawn(driver) >= 3
    number = "#number-shop-orders_count .figure"
    chart = "#chart-shop-revenue_per_month .vis svg"

    def text(selector: str) -> str:
        what = "textContent" if selector == number else "outerHTML"
        return str(driver.execute_script(f"return document.querySelector('{selector}').{what}"))

    assert text(number) == "3"
    chart_before = text(chart)
    driver.execute_script("window.notReloaded = true")

    Order.objects.create(product=Product.objects.get(), status="paid", quantity=40, amount="380.00")
    rebuilt = build.run()
    assert rebuilt.returncode == 0, rebuilt.stderr
    built = time.monotonic()
    wait_until(lambda: text(number) == "4", timeout=2)
    wait_until(lambda: text(chart) != chart_before, timeout=2 - (time.monotonic() - built))
    assert driver.execute_script("return window.notReloaded") is True
    assert driver.execute_script(
        "return document.querySelector('#chart-shop-revenue_per_month time').textContent"
    )


def test_pages_fit_a_wide_screen_and_a_phone_and_follow_the_dark_theme(driver, served, tmp_path):
    sign_in(driver, served, "/charts/shop/")
    for path in ("/charts/shop/", "/charts/users/", "/charts/", "/charts/shop/revenue_per_month/"):
        for width in (1400, 390):
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
            )
            driver.get(f"{served}{path}")
            all_drawn(driver)
            time.sleep(0.2)  # charts take their cards' width
            name = path.strip("/").replace("/", "-") or "charts"
            driver.save_screenshot(str(tmp_path / f"{name}-{width}.png"))
            overflow = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert overflow[0] <= overflow[1], (path, width, overflow)
            if width == 1400 and path in ("/charts/shop/", "/charts/users/"):
                columns = driver.execute_script(
                    "return getComputedStyle(document.querySelector('.charts'))"
                    ".gridTemplateColumns.split(' ').length"
                )
                assert columns >= 2, path

    background = "return getComputedStyle(document.body).backgroundColor"
    driver.get(f"{served}/charts/shop/")
    light = driver.execute_script(background)
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    driver.get(f"{served}/charts/shop/")
    dark = driver.execute_script(background)
    assert light == "rgb(246, 247, 249)" and dark == "rgb(20, 23, 28)"
    all_drawn(driver)
    driver.save_screenshot(str(tmp_path / "shop-dark.png"))
