"""A number that ends the session holding the database's build lock, as a server's
administrator (or a network failure) would, once: while a file named by
``CHARTBUILD_TEST_END_BUILD_SESSION`` exists."""

import os
from pathlib import Path

from django.db import connection

from chartbuild import number


@number(models=["auth.User"])
def ends_the_build_session():
    marker = Path(os.environ.get("CHARTBUILD_TEST_END_BUILD_SESSION", "/nonexistent"))
    if marker.exists():
        marker.unlink()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name LIKE 'chartbuild build%%'"
                " AND pid <> pg_backend_pid()"
            )
    return 1
