"""Names the outputs and the site take: which are safe, which are taken.

A leaf: the catalog checks names against these, the checks describe them, the site routes
by them.
"""

from __future__ import annotations

import re

#: A generator, chart or number name: a safe file name and URL part.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*", re.ASCII)
#: The folder of the pages' scripts in the output directory.
STATIC = "static"
#: Names an output of the site already uses: a chart or number may not take them.
RESERVED_NAMES = ("index", "manifest", "state", STATIC, "version")
#: Names a generator may not take, and what already has them.
RESERVED_GENERATORS = {
    STATIC: "the folder of the pages' scripts",
    "login": "the site's sign-in page",
    "logout": "the site's sign-out address",
}
