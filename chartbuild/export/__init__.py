"""Exporting: the change records that are new since the last export become stamp files.

``exporter`` counts the records per model, gap-safe, and writes one stamp per changed
model; ``horizon`` says which record ids can no longer appear (and may be pruned).
"""
