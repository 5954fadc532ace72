"""Every stage's CLI parses exactly its contract model: what the operator renders, the service's own app accepts."""

from __future__ import annotations

import importlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from clinops_common.contracts import StageArgs, option
from clinops_common.contracts.argv import from_options
from clinops_operator.core import stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def pipeline(name: str) -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / f"{name}.yaml").read_text())
    body["metadata"]["uid"] = "u1"
    return Pipeline.from_body(body)


def service_app(stage: stages.Stage) -> typer.Typer:
    app: typer.Typer = importlib.import_module(f"{stage.package}.__main__").app
    return app


def every_task() -> list[stages.StageTask]:
    streaming, batch = pipeline("adverse-event"), pipeline("stroke-risk")
    run_id = stages.scheduled_run_id(NOW)
    tasks = [stages.task(streaming, s, run_id) for s in stages.Stage if s is not stages.Stage.STROKE]
    return [*tasks, *(stages.task(batch, s, run_id) for s in stages.run_stages(batch))]


@pytest.mark.parametrize("task", every_task(), ids=lambda t: f"{t.pipeline}-{t.stage.value}")
def test_the_service_app_parses_the_rendered_command_into_the_same_model(
    task: stages.StageTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the service's real app on the rendered argv, with the stage's work replaced by a recorder."""
    group = typer.main.get_command(service_app(task.stage))
    command = group.commands[task.args[0]]  # type: ignore[attr-defined]
    parsed: list[StageArgs] = []
    monkeypatch.setattr(command, "callback", lambda **raw: parsed.append(from_options(type(task.arguments), raw)))
    group.main(list(task.args), prog_name=task.stage.package, standalone_mode=False)
    assert parsed == [task.arguments]


@pytest.mark.parametrize("stage", list(stages.Stage), ids=lambda s: s.value)
def test_the_stage_command_has_exactly_the_models_options(stage: stages.Stage) -> None:
    app = typer.main.get_command(service_app(stage))
    command = app.commands[stage.contract.value]  # type: ignore[attr-defined]
    options = {o for p in command.params for o in p.opts if o != "--help"}
    model = type(stages.task(pipeline("adverse-event"), stage, "m1").arguments)
    assert options == {option(name) for name in model.model_fields}


def test_the_trainer_parses_its_rendered_command_and_then_asks_for_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("CLINOPS_")]:
        monkeypatch.delenv(name)
    task = stages.task(pipeline("adverse-event"), stages.Stage.TRAINER, "m1")
    result = CliRunner().invoke(service_app(stages.Stage.TRAINER), list(task.args))
    assert "No such option" not in result.output
    assert result.exit_code != 0
    assert "CLINOPS_" in result.output + str(result.exception or "")
