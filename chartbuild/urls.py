"""The charts' URLs: ``path("charts/", include("chartbuild.urls"))`` in the project's URLconf.

See :mod:`chartbuild.site.urls`.
"""

from chartbuild.site.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
