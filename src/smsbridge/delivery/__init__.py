"""Outbound delivery: HTTP transport, sandbox provider, workers."""
