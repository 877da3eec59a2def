"""Generator modules with mistakes in them, for the configuration checks."""
