"""MkDocs hooks: the pages' tables of settings and system checks are made from the code.

``<!-- settings -->`` becomes the table of :data:`chartbuild.conf.SETTINGS` and
``<!-- checks -->`` that of :data:`chartbuild.problems.CHECKS`, so a setting or a check
cannot be added without its line in the documentation. ``<!-- readme: Section -->`` is
that section of the README (its steps are written, and tested, once), and the changelog
page is the repository's ``CHANGELOG.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from chartbuild import conf, problems

ROOT = Path(__file__).resolve().parent.parent


def settings_table() -> str:
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for setting in conf.SETTINGS:
        rows.append(f"| `{setting.name}` | {setting.default_text} | {setting.meaning} |")
    return "\n".join(rows)


def checks_table() -> str:
    rows = ["| id | problem |", "| --- | --- |"]
    for check_id, problem in problems.CHECKS.items():
        rows.append(f"| `{check_id}` | {problem} |")
    return "\n".join(rows)


def readme_section(title: str) -> str:
    """The body of the README's section ``title``, its links made relative to ``docs/``."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if found is None:
        raise ValueError(f"README.md has no section {title!r}")
    return found.group(1).replace("](docs/", "](")


def on_files(files: Files, config: Any) -> Files:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = re.sub(
        r"<!-- readme: (.+?) -->", lambda found: readme_section(found.group(1)), markdown
    )
    return markdown.replace("<!-- settings -->", settings_table()).replace(
        "<!-- checks -->", checks_table()
    )
