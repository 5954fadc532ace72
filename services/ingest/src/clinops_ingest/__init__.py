"""clinops ingest service."""
