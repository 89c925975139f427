"""LinkedIn Conversions API destination (`type: linkedin`)."""
