"""End-to-end tests: the router as a real process, the platforms as loopback fakes, real HTTP between."""
