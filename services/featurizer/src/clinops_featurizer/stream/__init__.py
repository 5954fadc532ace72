"""The streaming featurizer: vitals and labs events -> each patient's vitals and labs rows in the
online store, seconds after the event (``python -m clinops_featurizer stream``)."""
