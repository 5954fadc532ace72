"""``python -m clinops_trainer``: the trainer service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-trainer",
    "Train, evaluate and register risk models in MLflow; move the champion alias only through the promotion gate.",
    needs=["s3", "mlflow"],
)

if __name__ == "__main__":
    app()
