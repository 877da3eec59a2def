from chartbuild import number

PERMISSION = "shop.fly_order"


@number(models=["auth.User"], permission="nonsense")
def users():
    return 1


@number(models=["auth.User"], permission=lambda user: True)
def everyone():
    return 1
