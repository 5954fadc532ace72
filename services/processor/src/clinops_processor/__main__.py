"""``python -m clinops_processor``: the processor service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-processor",
    "Bronze to silver with PySpark: deduplicate, validate physiological ranges, standardise units, quarantine.",
    needs=["s3"],
)

if __name__ == "__main__":
    app()
