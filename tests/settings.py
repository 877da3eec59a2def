"""Settings for the test suite: the demo's, with knobs the tests turn through the environment.

- ``DATABASE_URL`` (from the demo settings) picks SQLite or PostgreSQL.
- ``CHARTBUILD_TEST_GENERATORS``: comma-separated generator modules instead of the demo's.
- ``CHARTBUILD_TEST_STORAGE``: ``STORAGES["chartbuild"]``, as JSON (outputs in a storage).
"""

import json
import os

from django.conf import global_settings

from demo.settings import *  # noqa: F403
from demo.settings import BASE_DIR, DATABASES, TEMPLATES

# A test database of this run's own: two runs on one machine or server never meet.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: doit runs in another process and must see the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get(
            "CHARTBUILD_TEST_SQLITE",
            str(BASE_DIR / ".chartbuild-test" / f"test-{os.getpid()}.sqlite3"),
        )
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_chartbuild_{os.getpid()}"}

if os.environ.get("CHARTBUILD_TEST_GENERATORS"):
    CHARTBUILD_GENERATORS = os.environ["CHARTBUILD_TEST_GENERATORS"].split(",")

if os.environ.get("CHARTBUILD_TEST_STORAGE"):
    STORAGES = {
        **global_settings.STORAGES,
        "chartbuild": json.loads(os.environ["CHARTBUILD_TEST_STORAGE"]),
    }

if os.environ.get("CHARTBUILD_TEST_TEMPLATES"):  # a project's own templates, first
    TEMPLATES[0]["DIRS"] = [os.environ["CHARTBUILD_TEST_TEMPLATES"]]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CHARTBUILD_STORAGE_GRACE = float(os.environ.get("CHARTBUILD_STORAGE_GRACE", 60))
CHARTBUILD_LOCK_TIMEOUT = float(os.environ.get("CHARTBUILD_LOCK_TIMEOUT", 600))
CHARTBUILD_POLL_INTERVAL = float(os.environ.get("CHARTBUILD_POLL_INTERVAL", 2))
CHARTBUILD_STRICT_READS = os.environ.get("CHARTBUILD_STRICT_READS") == "1"
if os.environ.get("CHARTBUILD_PARALLEL"):
    CHARTBUILD_PARALLEL = int(os.environ["CHARTBUILD_PARALLEL"])

# The live server's media handler serves MEDIA_ROOT at MEDIA_URL: with the defaults ("" and
# ""), any path a file of the working directory has (the demo's charts/) would be served
# from there instead of by the site's views.
MEDIA_URL = "/media/"
MEDIA_ROOT = str(BASE_DIR / ".chartbuild-test" / "media")
