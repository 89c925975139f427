"""Google Ads conversions via the Data Manager API or the Google Ads API (`type: google`)."""
