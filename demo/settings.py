"""Settings of the chartbuild demo project.

Configured from the environment:

- ``DATABASE_URL``: ``sqlite:///absolute/path`` or ``postgres://user:pass@host:port/name``
  (default: ``demo.sqlite3`` at the repository root);
- ``DJANGO_SECRET_KEY``: secret key (an insecure demo default is used otherwise);
- ``CHARTBUILD_DEMO_DEBUG=1``: turn ``DEBUG`` on (django-mqueue then prints every event);
- ``CHARTBUILD_OUTPUT_DIR`` / ``CHARTBUILD_STATE_DIR``: where charts and build state go.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def parse_database_url(url: str) -> dict[str, Any]:
    """Django ``DATABASES`` entry for a ``sqlite:///`` or ``postgres(ql)://`` URL."""
    if url.startswith("sqlite:///"):
        name = Path(unquote(url[len("sqlite:///") :]))
        if not name.is_absolute():
            name = BASE_DIR / name
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(name),
            "OPTIONS": {"timeout": 20},
        }
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"unsupported DATABASE_URL {url!r}: use sqlite:/// or postgres://")


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-chartbuild-demo-key-do-not-use-in-production"
)

# Off by default: with DEBUG on, django-mqueue prints a line on stdout for every event.
DEBUG = os.environ.get("CHARTBUILD_DEMO_DEBUG") == "1"

ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "import_export",  # imported by mqueue's admin
    "mqueue",
    "chartbuild",
    "demo.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chartbuild.middleware.WritesByUserMiddleware",  # `chartbuild why` names who wrote
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "demo.wsgi.application"

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'demo.sqlite3'}")
    ),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-mqueue: optional, since chartbuild's capture triggers see every write to the
# tables charts read. Listing a model adds an mqueue event for each save() and delete() of
# it (a history in the admin), and lets mqueue's hook (below) wake a running `doit auto`
# the moment such a change commits on SQLite.
MQUEUE_AUTOREGISTER = [
    ("django.contrib.auth.models.User", ["c", "u", "d"]),
    ("demo.shop.models.Product", ["c", "u", "d"]),
    ("demo.shop.models.Order", ["c", "u", "d"]),
]

# chartbuild's mqueue hook: wakes a running `doit auto` as soon as a listed model's change
# commits.
MQUEUE_HOOKS = {"chartbuild": {"path": "chartbuild.hooks"}}
CHARTBUILD_GENERATORS = ["generators.users", "generators.shop"]
CHARTBUILD_OUTPUT_DIR = Path(os.environ.get("CHARTBUILD_OUTPUT_DIR", BASE_DIR / "charts"))
CHARTBUILD_STATE_DIR = Path(os.environ.get("CHARTBUILD_STATE_DIR", BASE_DIR / ".chartbuild"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "loggers": {
        "chartbuild": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
