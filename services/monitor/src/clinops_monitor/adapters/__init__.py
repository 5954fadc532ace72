"""One adapter per external system: PostgreSQL, the lake's silver outcomes, MLflow, Kubernetes."""
