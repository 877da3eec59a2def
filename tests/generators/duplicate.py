from chartbuild import number


@number(models=["auth.User"], name="same")
def first():
    return 1


@number(models=["auth.User"], name="same")
def second():
    return 2
