"""clinops processor service."""
