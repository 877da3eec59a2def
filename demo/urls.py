"""URLs of the demo project: only the admin (django-mqueue links to admin pages)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
