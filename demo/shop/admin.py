from django.contrib import admin

from demo.shop.models import Order, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "price"]
    list_filter = ["category"]
    search_fields = ["name"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "customer", "status", "quantity", "amount", "created_at"]
    list_filter = ["status", "product__category"]
    date_hierarchy = "created_at"
    raw_id_fields = ["product", "customer"]
    list_select_related = ["product", "customer"]
