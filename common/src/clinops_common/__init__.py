"""Shared settings, event schemas, storage clients and feature definitions for clinops."""
