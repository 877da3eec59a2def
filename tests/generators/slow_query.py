"""A number whose query takes a minute: stopping must not wait for it. With
``CHARTBUILD_TEST_STARTED`` set, it creates that file as its query starts."""

import os
from pathlib import Path

from django.db import connection

from chartbuild import number


@number(models=["auth.User"])
def slow():
    if os.environ.get("CHARTBUILD_TEST_STARTED"):
        Path(os.environ["CHARTBUILD_TEST_STARTED"]).touch()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(60)")
        else:
            cursor.execute(
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c"
                " WHERE n < 1000000000) SELECT count(*) FROM c"
            )
        return 1
