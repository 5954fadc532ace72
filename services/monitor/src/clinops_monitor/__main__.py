"""``python -m clinops_monitor``: the monitor service's command line."""

from clinops_common.cli import service_app

app = service_app(
    "clinops-monitor",
    "Join predictions with outcomes; track AUROC, calibration and drift; ask the operator to retrain.",
    needs=["postgres", "s3"],
)

if __name__ == "__main__":
    app()
