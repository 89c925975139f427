"""Snap Conversions API v3 destination (`type: snap`)."""
