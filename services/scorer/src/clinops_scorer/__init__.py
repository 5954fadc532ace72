"""clinops scorer service."""
