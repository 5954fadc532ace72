"""The lake's data lifecycle: retention per layer (S3 lifecycle rules), raw bronze that no one can
rewrite (object lock), and the offline store's sweep. ``python -m clinops_common.lifecycle``."""
