"""``python -m clinops_trainer``: the trainer Job's command line.

``train`` takes exactly the stage contract's ``TrainArgs`` as options (``--help`` lists them), writes
its ``TrainResult`` to the lake (``runs/<pipeline>/<run id>/train.json``) and prints it as JSON on
stdout; progress goes to stderr. Exit 1 with a message when it cannot train (nothing registered),
143 on SIGTERM (the MLflow run ends KILLED, nothing registered).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import typer
from rich.console import Console

from clinops_common.cli import service_app
from clinops_common.contracts import TrainArgs, stage_command
from clinops_common.settings import TrainingConnections

app = service_app(
    "clinops-trainer",
    "Train, evaluate and register risk models in MLflow; move the champion alias only through the promotion gate.",
    needs=["s3", "mlflow"],
)
err = Console(stderr=True, soft_wrap=True)


def run(args: TrainArgs) -> None:
    from clinops_trainer import job
    from clinops_trainer.config import TrainerSettings

    pending: list[int] = []  # a signal whose exception library code may have swallowed

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)
        raise job.Terminated(f"signal {signum}")

    def say(msg: str) -> None:
        if pending:  # raised again at the next progress line (every training step prints one)
            raise job.Terminated(f"signal {pending.pop()}")
        err.print(msg, highlight=False)

    signal.signal(signal.SIGTERM, on_sigterm)
    conns = TrainingConnections()
    try:
        result = job.train(args, conns, TrainerSettings(), say=say)
        key = job.write_stage_result(conns, result)
    except job.TrainingError as e:
        err.print(f"[red]train failed:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    except job.Terminated:
        err.print("[yellow]terminated: the MLflow run ended KILLED; nothing registered[/]")
        raise typer.Exit(128 + signal.SIGTERM) from None
    err.print(f"result written to s3://{conns.lake_bucket}/{key}", highlight=False)
    sys.stdout.write(result.model_dump_json() + "\n")


stage_command(app, TrainArgs, run)

if __name__ == "__main__":
    app()
