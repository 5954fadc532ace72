"""kopf operator for FeaturePipeline resources."""
