"""Destination adapters, one folder per ad platform."""
