"""The settings a test process takes from its environment: the knobs the tests turn.

Read by ``tests/settings.py`` for a process a test starts, and by an in-process build
(:meth:`tests.doit.Build.run`) for its own: both see the same settings.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import global_settings


def settings_from(env: Mapping[str, str], templates: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings ``env`` asks for (``templates``: the project's ``TEMPLATES``)."""
    found: dict[str, Any] = {
        "CHARTBUILD_STORAGE_GRACE": float(env.get("CHARTBUILD_STORAGE_GRACE", 60)),
        "CHARTBUILD_LOCK_TIMEOUT": float(env.get("CHARTBUILD_LOCK_TIMEOUT", 600)),
        "CHARTBUILD_POLL_INTERVAL": float(env.get("CHARTBUILD_POLL_INTERVAL", 2)),
        "CHARTBUILD_LEADER_RETRY": float(env.get("CHARTBUILD_LEADER_RETRY", 2)),
        "CHARTBUILD_LEADER_LEASE": float(env.get("CHARTBUILD_LEADER_LEASE", 10)),
        "CHARTBUILD_STRICT_READS": env.get("CHARTBUILD_STRICT_READS") == "1",
        "CHARTBUILD_PARALLEL": int(env["CHARTBUILD_PARALLEL"])
        if env.get("CHARTBUILD_PARALLEL")
        else None,
    }
    for name in ("CHARTBUILD_OUTPUT_DIR", "CHARTBUILD_STATE_DIR"):
        if env.get(name):
            found[name] = Path(env[name])
    if env.get("CHARTBUILD_TEST_GENERATORS"):
        found["CHARTBUILD_GENERATORS"] = env["CHARTBUILD_TEST_GENERATORS"].split(",")
    if env.get("CHARTBUILD_TEST_STORAGE"):  # outputs in a storage
        found["STORAGES"] = {
            **global_settings.STORAGES,
            "chartbuild": json.loads(env["CHARTBUILD_TEST_STORAGE"]),
        }
    if env.get("CHARTBUILD_TEST_TEMPLATES"):  # a project's own templates, first
        found["TEMPLATES"] = copy.deepcopy(templates)
        found["TEMPLATES"][0]["DIRS"] = [env["CHARTBUILD_TEST_TEMPLATES"]]
    return found
