"""clinops featurizer service."""
