"""The feature store: definitions (once), point-in-time join, offline snapshots, online store."""

from clinops_common.features.definitions import (
    FEATURE_SERVICES,
    FEATURE_VIEWS,
    PATIENT,
    Feature,
    FeatureService,
    FeatureView,
    feature_service,
    feature_view,
)

__all__ = [
    "FEATURE_SERVICES",
    "FEATURE_VIEWS",
    "PATIENT",
    "Feature",
    "FeatureService",
    "FeatureView",
    "feature_service",
    "feature_view",
]
