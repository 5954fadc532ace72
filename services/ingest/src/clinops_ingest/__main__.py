"""``python -m clinops_ingest``: the ingest service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-ingest",
    "Kafka topics to bronze NDJSON on S3, at least once, with a dead-letter prefix for bad messages.",
    needs=["kafka", "s3"],
)

if __name__ == "__main__":
    app()
