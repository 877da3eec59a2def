"""The documentation stays true: its tables come from the code, no placeholder survives,
the README stays short and its links lead somewhere."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from django.conf import global_settings

from chartbuild import conf, problems
from tests.doit import REPO

PACKAGE = sorted((REPO / "chartbuild").rglob("*.py"))
DOCUMENTS = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    REPO / "CHANGELOG.md",
    REPO / "bench" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_the_package_names_is_in_the_settings_table():
    documented = {setting.name for setting in conf.SETTINGS}
    named = {
        name for path in PACKAGE for name in re.findall(r"\bCHARTBUILD_[A-Z_]+\b", path.read_text())
    }
    assert named - documented == set()
    assert documented - named <= {'STORAGES["chartbuild"]'}
    reads = [
        str(path.relative_to(REPO))
        for path in PACKAGE
        if path.name != "conf.py" and re.search(r"settings, \"CHARTBUILD_", path.read_text())
    ]
    assert reads == [], "settings are read through chartbuild.conf, with their defaults"


def test_every_check_the_package_reports_is_in_the_checks_table_and_tested():
    reported = {
        check_id
        for path in PACKAGE
        if path.name != "problems.py"
        for check_id in re.findall(r'"(chartbuild\.[EW]\d{3})"', path.read_text())
    }
    assert reported == set(problems.CHECKS)
    tests = "".join(path.read_text() for path in (REPO / "tests").glob("test_*.py"))
    untested = [check_id for check_id in problems.CHECKS if f'"{check_id}"' not in tests]
    assert untested == []


def test_an_undocumented_check_id_cannot_be_reported():
    try:
        problems.Problem("chartbuild.E999", "made up", "none")
    except ValueError as exc:
        assert "chartbuild.E999" in str(exc)
    else:
        raise AssertionError("a check id outside problems.CHECKS was accepted")


def test_the_documentation_makes_its_tables_from_the_code():
    made = hooks()
    settings_page = (REPO / "docs" / "settings.md").read_text()
    checks_page = (REPO / "docs" / "checks.md").read_text()
    assert "<!-- settings -->" in settings_page and "<!-- checks -->" in checks_page
    table = made.on_page_markdown(settings_page + checks_page, None, None, None)
    for setting in conf.SETTINGS:
        assert f"| `{setting.name}` | {setting.default_text} |" in table
    for check_id, problem in problems.CHECKS.items():
        assert f"| `{check_id}` | {problem} |" in table


def test_getting_started_is_the_readmes_steps():
    page = hooks().on_page_markdown(
        (REPO / "docs" / "getting-started.md").read_text(), None, None, None
    )
    assert "INSTALLED_APPS += [" in page and "urlpatterns += [" in page
    assert "](docs/" not in page


def prose(text: str) -> str:
    """``text`` without its code blocks, code spans and HTML comments."""
    text = re.sub(r"^( *)```.*?^\1```", "", text, flags=re.M | re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"`[^`\n]+`", "", text)


def known_names() -> set[str]:
    """Upper-case names the code defines or reads: settings, environment variables."""
    sources = [*REPO.glob("chartbuild/**/*.py"), *REPO.glob("tests/*.py"), *REPO.glob("demo/*.py")]
    sources += [*REPO.glob("scripts/*"), *REPO.glob("bench/*.py"), REPO / ".ci" / "run"]
    names = {
        name for path in sources for name in re.findall(r"\b[A-Z][A-Z0-9_]+\b", path.read_text())
    }
    return names | set(dir(global_settings))


def test_no_placeholder_survives():
    known = known_names()
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        where = path.relative_to(REPO)
        for pattern in (
            r"<(host|owner|user|repo|repository|project)[^>]*>",
            r"\bTODO\b",
            r"\bTBD\b",
            r"\bFIXME\b",
            r"\bXXX\b",
            r"<[^>]*\bURL>",
        ):
            found += [f"{where}: {m.group(0)}" for m in re.finditer(pattern, text)]
        # an all-capitals token in prose stands where words or figures belong
        found += [
            f"{where}: {m.group(0)}"
            for m in re.finditer(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", prose(text))
        ]
        # in code, such a token must name a setting or a variable the code knows
        for code in re.findall(r"`([^`\n]+)`", text):
            found += [
                f"{where}: unknown name {name} in `{code}`"
                for name in re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", code)
                if name not in known
            ]
    assert found == []


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"dist/chartbuild-{version}-py3-none-any.whl" in readme
    for path in (REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "bench" / "README.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"
    assert Path(REPO / "docs" / "images" / "dashboard.png").is_file()
