"""Pinterest Conversions API destination (`type: pinterest`)."""
