"""Pydantic I/O schemas of the API, one module per resource (``base`` holds what they share)."""
