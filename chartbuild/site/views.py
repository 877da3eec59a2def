"""The charts in the Django site: index, dashboards, chart pages, files, live state.

``path("charts/", include("chartbuild.site.urls"))`` routes them. Every view checks who may
see what (:mod:`chartbuild.site.permissions`): anonymous visitors are sent to the sign-in page
(:func:`login_url`); a signed-in user gets the same 404 page, in the site's look, for a name
they may not see as for one that does not exist, so names cannot be found by probing. Files
are read from the build outputs, only by the names the catalog declares (nothing else of the
output directory, let alone outside it, can be reached); they carry an ``ETag`` and
``Last-Modified`` and answer conditional requests with 304, or are handed to the web server
with ``CHARTBUILD_SENDFILE``. With ``STORAGES["chartbuild"]`` they are read from that storage
instead, or the browser is sent to the storage's signed URL (see :mod:`chartbuild.publish.storage`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date, quote_etag
from django.views.decorators.http import require_safe

from chartbuild import conf
from chartbuild.build import why as explain
from chartbuild.publish import assets, outputs, pages, storage
from chartbuild.site import items as site
from chartbuild.site import permissions, stored

CONTENT_TYPES = {
    "vl.json": "application/json",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "csv": "text/csv; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}


class _SignIn(Exception):
    """An anonymous visitor asked for something that needs a user."""


class _Forbidden(Exception):
    """A signed-in user asked for something they may not see: answered as not found."""


def _deny(request: HttpRequest, what: str) -> NoReturn:
    if not request.user.is_authenticated:
        raise _SignIn
    raise _Forbidden(what)


def login_url() -> str:
    """Where anonymous visitors sign in: ``LOGIN_URL`` when the project's settings set it,
    else chartbuild's own sign-in page (``charts/login/``), so a new project needs none."""
    if settings.is_overridden("LOGIN_URL"):
        return str(resolve_url(settings.LOGIN_URL))
    return reverse("chartbuild:login")


def _guarded(view: Any) -> Any:
    """GET and HEAD only; anonymous visitors that need a user go to the sign-in page; a
    user who may not see something, or asks for what does not exist, gets the site's own
    404 page, the same for both (only staff, and DEBUG for what is missing, read why)."""

    @functools.wraps(view)
    @require_safe
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response: HttpResponseBase = view(request, *args, **kwargs)
        except _SignIn:
            return redirect_to_login(request.get_full_path(), login_url())
        except _Forbidden as exc:
            reason = str(exc) if request.user.is_staff else ""
            return render(request, "chartbuild/site/404.html", {"reason": reason}, status=404)
        except Http404 as exc:
            # what is missing, for those who run the site (it names files and commands)
            reason = str(exc) if settings.DEBUG or request.user.is_staff else ""
            return render(request, "chartbuild/site/404.html", {"reason": reason}, status=404)
        return response

    return wrapped


class LoginView(auth_views.LoginView):
    """chartbuild's sign-in page, for projects that set no ``LOGIN_URL`` of their own.

    A project that sets one keeps it (with its two-factor or single sign-on): this page
    then sends its visitors there.
    """

    template_name = "chartbuild/site/login.html"
    next_page = "chartbuild:index"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if settings.is_overridden("LOGIN_URL"):
            return redirect_to_login(request.GET.get("next", reverse("chartbuild:index")))
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)
        return response


class LogoutView(auth_views.LogoutView):
    """Signs out (``POST``), then back to the charts (and so to the sign-in page)."""

    next_page = "chartbuild:index"


def _missing(request: HttpRequest, what: str) -> NoReturn:
    """404; for anonymous visitors the login page, so that names do not show who exists."""
    if not request.user.is_authenticated:
        raise _SignIn
    raise Http404(what)


def _generator(request: HttpRequest, name: str) -> Any:
    found = site.generator(name)
    if found is None:
        _missing(request, f"no generator {name!r}")
    return found


def _visible(request: HttpRequest, generator: str) -> tuple[Any, list[site.Item]]:
    """Generator ``generator`` and what the user may see of it (something, or no entry)."""
    gen = _generator(request, generator)
    visible = site.items(request.user, gen)
    if not visible:
        _deny(request, f"you may see nothing of generator {generator!r}")
    return gen, visible


def _item(request: HttpRequest, generator: str, name: str) -> site.Item:
    gen = _generator(request, generator)
    entry = site.item(gen, name)
    if entry is None:
        _missing(request, f"generator {generator!r} has no chart or number {name!r}")
    if not site.may_see(request.user, entry):
        _deny(request, f"you may not see {entry.task}")
    return entry


@_guarded
def index(request: HttpRequest) -> HttpResponse:
    """The generators the user may see: title, number of charts, last build."""
    found = site.generators(request.user)
    if not found and not request.user.is_authenticated:
        _deny(request, "nothing to see")
    rows = [
        {"generator": gen, "count": len(visible), "built_at": site.last_build(visible)}
        for gen, visible in found
    ]
    return render(request, "chartbuild/site/index.html", {"rows": rows})


@_guarded
def dashboard(request: HttpRequest, generator: str) -> HttpResponse:
    """The charts and numbers of one generator that the user may see."""
    gen, visible = _visible(request, generator)
    context = {
        "generator": gen,
        "numbers": [entry for entry in visible if entry.kind == "number"],
        "charts": [entry for entry in visible if entry.kind == "chart"],
        "built_at": site.last_build(visible),
        "live_interval": conf.live_interval(),
    }
    return render(request, "chartbuild/site/dashboard.html", context)


@_guarded
def item(request: HttpRequest, generator: str, name: str) -> HttpResponse:
    """One chart or number on a page of its own, with its data as a table."""
    entry = _item(request, generator, name)
    if not entry.built:
        return render(request, "chartbuild/site/not_built.html", {"item": entry}, status=404)
    context: dict[str, Any] = {
        "generator": entry.generator,
        "item": entry,
        "live_interval": conf.live_interval(),
        # staff read why it was last built (manage.py chartbuild why tells the history)
        "why": explain.lines(list(entry.record.why)) if request.user.is_staff else [],
    }
    if entry.kind == "chart":
        found = entry.file("vl.json")
        try:
            spec = json.loads(found.read()) if found else {}
        except (OSError, ValueError):
            spec = {}
        context["tables"] = data_tables(spec, entry)
    return render(request, "chartbuild/site/item.html", context)


@_guarded
def output(request: HttpRequest, generator: str, name: str, extension: str) -> HttpResponseBase:
    """A file of a chart (``.vl.json``, ``.svg``, ``.png``, ``.csv``) or number (``.json``)."""
    entry = _item(request, generator, name)
    found = entry.file(extension)
    if found is None:
        if extension == entry.main_extension:
            raise Http404(f"{entry.task} has not been built yet: run doit")
        raise Http404(f"{entry.kind} {entry.task} has no .{extension} file")
    content_type = CONTENT_TYPES[extension.rsplit(".", 1)[-1]]
    if found.path is None:
        return serve_stored(request, str(found.stored), content_type)
    return serve(request, found.path, content_type)


@require_safe
def asset(request: HttpRequest, filename: str) -> HttpResponseBase:
    """The pages' scripts and style sheet (public: they hold no data)."""
    if filename in outputs.PACKAGE_ASSETS:
        path = assets.PACKAGE_STATIC / filename
    elif filename == "vega.js":
        path = conf.output_dir() / outputs.STATIC / filename
        found = stored.asset(f"{outputs.STATIC}/{filename}") if storage.configured() else None
        if found is not None:
            return serve_stored(request, found, CONTENT_TYPES["js"], public=True)
        if not path.is_file():
            raise Http404("vega.js has not been built yet: run doit")
    else:
        raise Http404(f"no asset {filename!r}")
    return serve(request, path, CONTENT_TYPES[filename.rsplit(".", 1)[-1]], public=True)


@_guarded
def state(request: HttpRequest, generator: str) -> HttpResponseBase:
    """What a live page of a generator polls: each visible item's version (304 if unchanged)."""
    _, visible = _visible(request, generator)
    return _json(request, {"items": site.state(visible)})


@_guarded
def manifest(request: HttpRequest) -> HttpResponseBase:
    """``manifest.json``, listing only what the user may see."""
    entries = site.manifest(request.user)
    if not entries and not request.user.is_authenticated:
        _deny(request, "nothing to see")
    return _json(request, {"entries": entries})


@require_safe
def metrics(request: HttpRequest) -> HttpResponseBase:
    """The charts' Prometheus metrics, for ``CHARTBUILD_METRICS_PERMISSION``: a signed-in
    user, or a scraper signing in with HTTP Basic authentication (401 asks for it)."""
    from chartbuild.site import metrics as exported

    user = _basic_user(request) or request.user
    if not user.is_authenticated:
        response = HttpResponse("sign in to read the metrics\n", status=401)
        response["WWW-Authenticate"] = 'Basic realm="chartbuild metrics", charset="UTF-8"'
        return response
    if not permissions.allows(conf.metrics_permission(), user):
        return HttpResponse("not allowed to read the metrics\n", status=403)
    try:
        body = exported.exposition(site.every_item())
    except DatabaseError as exc:
        return HttpResponse(f"cannot read the database: {exc}\n", status=503)
    response = HttpResponse(body, content_type=exported.CONTENT_TYPE)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _basic_user(request: HttpRequest) -> Any:
    """The user of a request's ``Authorization: Basic`` credentials, if they are valid."""
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return authenticate(request, username=username, password=password)


def _json(request: HttpRequest, data: dict[str, Any]) -> HttpResponseBase:
    body = json.dumps(data, sort_keys=True).encode()
    etag = quote_etag(hashlib.sha256(body).hexdigest()[:20])
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return _revalidated(response)


def _revalidated(response: HttpResponseBase, *, public: bool = False) -> HttpResponseBase:
    """Kept by browsers (and, ``public``, by shared caches) and asked for again each time:
    a rebuild shows at once, an unchanged file is a 304."""
    if public:
        patch_cache_control(response, public=True, no_cache=True)
    else:
        patch_cache_control(response, private=True, no_cache=True)
    return response


def serve(
    request: HttpRequest, path: Path, content_type: str, *, public: bool = False
) -> HttpResponseBase:
    """``path`` with validators, 304 when the client has it, or handed to the web server.

    The file is opened first and its validators taken from what was opened: a build that
    replaces it meanwhile never pairs one version's ``ETag`` with another's content.
    """
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise Http404(f"{path.name} is gone (a build removed it): try again") from None
    stat = os.fstat(stream.fileno())
    etag = quote_etag(f"{stat.st_mtime_ns:x}-{stat.st_size:x}")
    last_modified = int(stat.st_mtime)
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    mode, out = conf.sendfile(), conf.output_dir()
    if response is not None or mode:
        stream.close()
    if response is None:
        if mode == "X-Sendfile":
            response = HttpResponse(content_type=content_type)
            response[mode] = str(path)
        elif mode == "X-Accel-Redirect" and path.is_relative_to(out):
            response = HttpResponse(content_type=content_type)
            response[mode] = conf.sendfile_url() + path.relative_to(out).as_posix()
        else:
            if mode:  # a file outside the output directory: nginx cannot reach it
                stream = path.open("rb")
            response = FileResponse(stream, content_type=content_type)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    return _revalidated(response, public=public)


def serve_stored(
    request: HttpRequest, name: str, content_type: str, *, public: bool = False
) -> HttpResponseBase:
    """File ``name`` of ``STORAGES["chartbuild"]``: streamed, or a redirect to its signed URL.

    Its name carries a digest of its content (see :mod:`chartbuild.publish.storage`): that is its
    ``ETag``, and a file of that name never changes. A redirect is never cached: the
    signature it carries expires.
    """
    store = storage.get()
    if storage.signs_urls(store):
        # a signed URL expires: the redirect is never stored, nor answered with 304
        response: HttpResponseBase = HttpResponseRedirect(store.url(name))
        patch_cache_control(response, no_store=True)
        return response
    etag = quote_etag(name.rsplit("/", 1)[-1].split(".")[1])
    response = get_conditional_response(request, etag=etag)
    if response is None:
        try:
            stream = store.open(name, "rb")
        except FileNotFoundError:
            raise Http404(f"{name} is gone (a newer build replaced it): try again") from None
        response = FileResponse(stream, content_type=content_type)
    response["ETag"] = etag
    return _revalidated(response, public=public)


#: Rows of a data set the chart page shows as a table; the CSV has them all.
TABLE_ROWS = 500


def data_tables(spec: dict[str, Any], entry: site.Item) -> list[dict[str, Any]]:
    """The inline data sets of a spec as tables: ``{"columns": [...], "rows": [[...]]}``.

    Each column has a ``kind``: ``"num"`` when every value is a number, ``"date"`` or
    ``"datetime"`` when every value is an ISO 8601 date or time, else ``""``; each cell its
    ``text`` (as the page shows it without script), ``value`` (what the script formats in
    the reader's locale) and ``kind``.
    """
    found = []
    for number, rows in enumerate(outputs.data_sets(spec), start=1):
        names = outputs.columns(rows)
        shown = rows[:TABLE_ROWS]
        kinds = {name: _kind([row.get(name) for row in shown]) for name in names}
        extension = "csv" if number == 1 else f"{number}.csv"
        found.append(
            {
                "columns": [{"name": name, "kind": kinds[name]} for name in names],
                "rows": [[_cell(row.get(name), kinds[name]) for name in names] for row in shown],
                "total": len(rows),
                "more": len(rows) > TABLE_ROWS,
                "csv": reverse(
                    "chartbuild:output", args=[entry.generator.name, entry.name, extension]
                ),
            }
        )
    return found


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def _kind(values: list[Any]) -> str:
    """What every non-empty value of a column is: ``"num"``, ``"date"``, ``"datetime"``, ``""``."""
    present = [value for value in values if value is not None and value != ""]
    if not present:
        return ""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "num"
    if all(isinstance(v, str) and _DATE.fullmatch(v) for v in present):
        return "date"
    if all(isinstance(v, str) and _DATETIME.fullmatch(v) for v in present):
        return "datetime"
    return ""


def _cell(value: Any, kind: str) -> dict[str, Any]:
    if value is None:
        return {"text": "", "value": "", "kind": ""}
    if kind == "num":
        return {"text": pages.display(value), "value": json.dumps(value), "kind": kind}
    return {"text": str(value), "value": str(value), "kind": kind}
