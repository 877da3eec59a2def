"""A tiny shop whose products and orders feed the demo charts."""
