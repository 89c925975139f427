"""TikTok Events API 2.0 destination (`type: tiktok`)."""
