"""The admin index gets a "Charts" entry for staff, linking to the charts' pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, URLPattern, path, reverse

from chartbuild.models import Charts


@admin.register(Charts)
class ChartsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Not a model to edit: its only page, the list, is a redirect to ``chartbuild:index``."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff and _index_url())

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        """Only the list, a redirect: no page of the change log behind the proxy."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        url = _index_url()
        if not url:
            raise Http404("the charts are not routed: include chartbuild.site.urls in the URLconf")
        return HttpResponseRedirect(url)


def _index_url() -> str:
    try:
        return reverse("chartbuild:index")
    except NoReverseMatch:
        return ""
