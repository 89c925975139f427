"""The durable queue: events and their per-destination delivery state."""
