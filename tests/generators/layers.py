from django.contrib.auth.models import User

from chartbuild import chart


@chart(models=[User])
def two_layers():
    """Two inline data sets"""
    count = User.objects.count()
    return {
        "layer": [
            {
                "data": {"values": [{"users": count}]},
                "mark": "bar",
                "encoding": {"y": {"field": "users", "type": "quantitative"}},
            },
            {
                "data": {"values": [{"goal": 10}, {"goal": 20}]},
                "mark": "rule",
                "encoding": {"y": {"field": "goal", "type": "quantitative"}},
            },
        ][: 2 if count < 5 else 1]
    }
