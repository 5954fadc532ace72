"""``python -m clinops_featurizer``: the featurizer service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-featurizer",
    "Silver to features: offline store on S3, point-in-time training sets, Redis online store.",
    needs=["s3", "redis"],
)

if __name__ == "__main__":
    app()
