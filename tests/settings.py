"""Settings for the test suite: the demo's, with knobs the tests turn through the environment.

- ``DATABASE_URL`` (from the demo settings) picks SQLite or PostgreSQL.
- ``CHARTBUILD_TEST_GENERATORS``: comma-separated generator modules instead of the demo's.
- ``CHARTBUILD_TEST_STORAGE``: ``STORAGES["chartbuild"]``, as JSON (outputs in a storage).
"""

import os

from demo.settings import *  # noqa: F403
from demo.settings import BASE_DIR, DATABASES, TEMPLATES
from tests.environment import settings_from

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

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

globals().update(settings_from(os.environ, TEMPLATES))

# The live server's media handler serves MEDIA_ROOT at MEDIA_URL: with the defaults ("" and
# ""), any path a file of the working directory has (the demo's charts/) would be served
# from there instead of by the site's views.
MEDIA_URL = "/media/"
MEDIA_ROOT = str(BASE_DIR / ".chartbuild-test" / "media")
