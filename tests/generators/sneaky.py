from django.contrib.auth.models import User

from chartbuild import number
from demo.shop.models import Order


@number(models=[User], label="Orders, declared as users")
def sneaky():
    """Reads orders without declaring them"""
    return Order.objects.count()


@number(models=[User], label="Users")
def honest():
    """Reads what it declares"""
    return User.objects.filter(groups__isnull=True).count()
