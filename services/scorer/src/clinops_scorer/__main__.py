"""``python -m clinops_scorer``: the scorer service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-scorer",
    "Real-time risk scoring: one Redis read, the champion model, an audit row in PostgreSQL per prediction.",
    needs=["redis", "postgres", "mlflow"],
)

if __name__ == "__main__":
    app()
