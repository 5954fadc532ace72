"""clinops monitor service."""
