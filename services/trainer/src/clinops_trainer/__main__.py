"""``python -m clinops_trainer``: the trainer service's command line.

``train`` parses exactly ``clinops_common.contracts.TrainArgs`` (what the operator renders); the
training itself is not built yet, so it says so and exits non-zero.
"""

import typer

from clinops_common.cli import service_app
from clinops_common.contracts import TrainArgs, stage_command

EXIT_NOT_BUILT = 3

app = service_app(
    "clinops-trainer",
    "Train, evaluate and register risk models in MLflow; move the champion alias only through the promotion gate.",
    needs=["s3", "mlflow"],
)


def train(args: TrainArgs) -> None:
    typer.echo(
        f"clinops-trainer: training is not built yet (arguments parsed: {args.model_family} "
        f"{args.registered_model_name} on {args.feature_service}, snapshot {args.snapshot_id or 'latest'})",
        err=True,
    )
    raise typer.Exit(EXIT_NOT_BUILT)


stage_command(app, TrainArgs, train)

if __name__ == "__main__":
    app()
