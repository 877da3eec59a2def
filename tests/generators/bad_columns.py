from chartbuild import number


@number(models=["auth.User"], columns={"auth.User": ["date_joined", "shoe_size"]})
def users():
    return 1


@number(models=["auth.User"], columns={"shop.Order": ["status"]})
def orders():
    return 1
