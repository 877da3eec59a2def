"""Building: the doit task graph and what its tasks run, one build at a time.

``tasks`` declares the graph, ``actions`` is what its tasks do, ``render`` draws charts in
worker processes, ``reads`` records what a chart's queries read, ``progress`` reports,
``lock`` and ``dblock`` let one build run at a time, ``handover`` adopts another builder's
state, ``runner`` runs a build in this process.
"""
