from chartbuild import chart, number


@chart(models=["auth.User"])
def users_chart():
    """A chart of users"""
    return {"mark": "bar", "data": {"values": []}}


@number(models=["auth.User"], label="Users")
def user_count():
    return 1
