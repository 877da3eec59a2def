"""The charts in the Django site: pages, files and live state, to whoever may see them.

``items`` answers, for a user, what they may see and where its files are; ``permissions``
decides each; ``views`` and ``urls`` turn that into responses.
"""
