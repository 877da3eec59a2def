"""URLs of the demo project: the admin (mqueue links to its pages), sign-in and the charts."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("charts/", include("chartbuild.urls")),
]
