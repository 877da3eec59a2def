"""URLs of the demo project: the admin (mqueue links to its pages) and the charts.

Signing in needs no route of its own: the charts' URLs bring a sign-in page.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("charts/", include("chartbuild.urls")),
]
