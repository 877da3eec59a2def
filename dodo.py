"""The demo's charts as doit tasks: `doit` builds what changed, `doit gen:users` one generator."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django.setup()

from chartbuild.tasks import *  # noqa: E402, F403 - the task_* creators
from chartbuild.tasks import doit_config  # noqa: E402

DOIT_CONFIG = doit_config()
