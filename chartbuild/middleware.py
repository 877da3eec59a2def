"""``chartbuild.middleware.WritesByUserMiddleware``: a request's writes carry its user.

Add it to ``MIDDLEWARE`` after ``AuthenticationMiddleware``: the change records of the
writes a request makes to the tables charts read then name its signed-in user (and the
request), and ``manage.py chartbuild why`` tells who changed what a chart shows. A
request that writes nothing costs nothing (see :mod:`chartbuild.capture.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from chartbuild.capture.context import writes_by


class WritesByUserMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with writes_by(f"{user.get_username()} ({request.method} {request.path})"):
            return self.get_response(request)
