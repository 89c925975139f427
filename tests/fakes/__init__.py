"""Loopback fakes of the ad platforms' conversion APIs, each enforcing that platform's contract."""
