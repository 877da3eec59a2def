"""The pages in a real browser: headless Chromium, from file://, with the network cut off."""

import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = next(
    filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))),
    None,
)


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CHARTBUILD_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (CHARTBUILD_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("needs Chromium (Debian's package chromium; scripts/test installs it as root)")

    def dump_dom(page) -> str:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host resolves
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return dump_dom


@pytest.mark.parametrize("page", ["users/index.html", "shop/index.html", "shop/top_products.html"])
def test_pages_draw_their_charts_with_the_local_vega_scripts(build, browser, page):
    source = (build.out / page).read_text()
    figures = len(re.findall(r'<figure class="chart"', source))
    assert figures >= 1
    dom = browser(build.out / page)
    assert dom.count('class="chart live"') == figures  # vegaEmbed drew every chart
    assert "data-error" not in dom
    assert dom.count('role="graphics-document"') >= figures  # Vega's own SVG views
