"""clinops trainer service."""
