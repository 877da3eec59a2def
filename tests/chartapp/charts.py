from chartbuild import number


@number(models=["auth.User"], label="People", unit="people")
def people():
    return 2
