from chartbuild import number


@number(models=["auth.User"], name="../escape")
def escape():
    return 1
