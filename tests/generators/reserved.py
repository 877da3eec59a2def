from chartbuild import chart, number


@chart(models=["auth.User"], name="index")
def index_chart():
    """Collides with the dashboard, index.html"""
    return {"mark": "bar", "data": {"values": [{"a": 1}]}}


@number(models=["auth.User"], label="Users")
def users():
    return 1


@number(models=["auth.User"], name="Users", label="Users again")
def users_again():
    return 2


@number(models=["auth.User"], label="Fine")
def fine():
    return 3
