"""What a build prints: a line per chart, one line per failure, a summary."""

import os

import pytest

from chartbuild.build import lock


@pytest.mark.django_db(transaction=True)
def test_a_refused_build_says_why_in_one_line(build):
    held = lock.acquire(build.state / "build.lock", timeout=5)
    build.env["CHARTBUILD_LOCK_TIMEOUT"] = "0"
    try:
        result = build.run(json_report=False)
    finally:
        lock.release(held)
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    (refused,) = [line for line in lines if "FAILED" in line]
    assert refused.startswith("export FAILED: ") and f"pid {os.getpid()}" in refused
    assert not any(line.startswith("[") for line in lines)  # no chart says it again
    assert lines[-1].startswith("built 0, up to date 0, failed 0;")


@pytest.mark.django_db(transaction=True)
def test_the_places_count_the_charts_of_this_build_from_the_first(build):
    from django.contrib.auth.models import User

    User.objects.create(username="new")  # the users' charts
    source = build.gens / "shop.py"
    source.write_text(source.read_text() + "\n# edited\n")  # and every chart of the shop
    result = build.run(json_report=False)
    assert result.returncode == 0, result.stderr
    places = [
        tuple(map(int, line[1 : line.index("]")].split("/")))
        for line in result.stdout.splitlines()
        if line.startswith("[")
    ]
    total = len(places)
    assert total > 6 and places == [(n, total) for n in range(1, total + 1)], places
