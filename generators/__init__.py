"""Chart generators of the demo project, listed in ``CHARTBUILD_GENERATORS``.

Each module reads only the models its declarations name, so that a change to one model
rebuilds only the charts that depend on it. Modules are self-contained on purpose: a
chart is rebuilt when its generator's source changes, and shared helpers elsewhere would
escape that.
"""
