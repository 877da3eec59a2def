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


def test_editing_a_page_template_rebuilds_the_pages_and_nothing_else(build, tmp_path):
    from chartbuild.publish import pages

    templates = tmp_path / "templates"
    override = templates / "chartbuild" / "chart.html"
    override.parent.mkdir(parents=True)
    override.write_text(pages.TEMPLATES.joinpath(pages.CHART).read_text())
    build.env["CHARTBUILD_TEST_TEMPLATES"] = str(templates)
    first = build.run()  # the project's own copy is found first: a new dependency
    assert first.returncode == 0, first.stderr
    assert first.charts == set()

    override.write_text(override.read_text().replace("<main>", "<main data-edited>"))
    edited = build.run()
    assert edited.returncode == 0, edited.stderr
    assert edited.charts == set()  # no chart or number ran again
    assert {"gen:users", "gen:shop"} <= edited.executed
    for page in build.out.glob("*/*.html"):
        if page.name != "index.html":
            assert "<main data-edited>" in page.read_text(), page

    assert build.run().executed <= {"export", "gen", "manifest"}  # and then nothing


def test_a_missing_page_comes_back(build):
    page = build.out / "shop" / "top_products.html"
    page.unlink()
    again = build.run()
    assert again.returncode == 0
    assert again.charts == set() and page.is_file()
