from chartbuild import number


@number(models=["auth.User"], name="x\n")
def x():
    return 1
