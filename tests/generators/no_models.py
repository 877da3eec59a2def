from chartbuild import number


@number(models=[])
def lonely():
    return 1
