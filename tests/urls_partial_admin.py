"""A site whose admin knows products only: orders and users have no admin change page."""

from django.contrib import admin
from django.urls import path

from demo.shop.models import Product

site = admin.AdminSite(name="admin")
site.register(Product)

urlpatterns = [path("admin/", site.urls)]
