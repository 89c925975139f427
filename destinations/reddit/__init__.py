"""Reddit Conversions API v3 destination (`type: reddit`)."""
