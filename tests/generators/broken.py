from chartbuild import number

raise RuntimeError("this generator is broken on purpose")


@number(models=["auth.User"])
def never():
    return 1
