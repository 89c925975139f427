"""Meta Conversions API destination (`type: meta`)."""
