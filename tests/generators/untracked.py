from chartbuild import number


@number(models=["auth.Group"])
def groups():
    return 1
