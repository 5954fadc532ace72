"""The stage contract: every stage's arguments survive render -> parse unchanged; bad input is a usage error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import typer

from clinops_common.contracts import (
    ARGS,
    RESULTS,
    FeaturizeArgs,
    IngestArgs,
    MaterializeArgs,
    ProcessArgs,
    Split,
    StageArgs,
    StageName,
    StrokeArgs,
    TrainArgs,
    TrainResult,
    parse,
    render,
    result_key,
)
from clinops_common.sources import BatchSource

BASE = {"pipeline": "adverse-event", "run_id": "m1a2b3c4d"}

# Per stage: its defaults, and every field set to something other than its default.
CASES: list[StageArgs] = [
    IngestArgs(**BASE),
    IngestArgs(**BASE, topics=("vitals", "labs"), topic_prefix="t1-", group_id="g", idle_exit_s=2.5, max_messages=10),
    ProcessArgs(**BASE),
    ProcessArgs(**BASE, dates=(date(2026, 1, 1), date(2026, 1, 3)), full=True),
    FeaturizeArgs(**BASE),
    FeaturizeArgs(
        **BASE,
        feature_service="stroke_risk_v1",
        windows=("1h", "6h"),
        label_horizon_hours=12,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 1, 2, 6, 30),
        recompute=True,
    ),
    MaterializeArgs(**BASE),
    MaterializeArgs(**BASE, snapshot_id="20260101T000000Z-abc", end="data", incremental=True, key_ttl_hours=6),
    MaterializeArgs(**BASE, end=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    StrokeArgs(**BASE),
    StrokeArgs(**BASE, as_of=date(2026, 2, 1), sample_rows=7),
    StrokeArgs(
        **BASE,
        sources=(
            BatchSource(
                table="hospital_admin",
                uri="sqlserver://db:1433/hospital?table=dbo.administration",
                format="sqlserver",
                timestamp_column="admission_date",
                credentials_env="CLINOPS_SOURCE_HOSPITAL_ADMIN_URL",
            ),
        ),
    ),
    TrainArgs(**BASE, registered_model_name="adverse-event"),
    TrainArgs(
        **BASE,
        model_family="gradient-boosted-trees",
        registered_model_name="stroke-risk",
        feature_service="stroke_risk_v1",
        label="stroke",
        snapshot_id="snap-1",
        lookback_days=365,
        split=Split(train=0.6, validation=0.2, test=0.2),
        min_auroc=0.7,
        must_beat_champion=False,
        hyperparameters={"maxDepth": 6, "hiddenUnits": [128, 64], "name": "x y", "dropout": 0.2},
    ),
]


def test_every_stage_has_a_case_with_every_field_changed() -> None:
    for stage, model in ARGS.items():
        mine = [c for c in CASES if type(c) is model]
        assert mine, f"no round-trip case for {stage}"
        defaults = model(**BASE, **({"registered_model_name": "x"} if model is TrainArgs else {}))
        changed = {n for c in mine for n in model.model_fields if getattr(c, n) != getattr(defaults, n)}
        assert changed | {"pipeline", "run_id", "registered_model_name"} >= set(model.model_fields), stage


@pytest.mark.parametrize("args", CASES, ids=lambda a: type(a).__name__)
def test_render_then_parse_gives_the_same_model(args: StageArgs) -> None:
    argv = render(args)
    assert argv[0] == args.stage.value
    assert parse(type(args), argv) == args


def test_render_writes_text_as_text_and_the_rest_as_json() -> None:
    argv = render(CASES[-1])
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert pairs["--model-family"] == "gradient-boosted-trees"
    assert pairs["--snapshot-id"] == "snap-1"
    assert pairs["--must-beat-champion"] == "false"
    assert pairs["--split"] == '{"test":0.2,"train":0.6,"validation":0.2}'
    assert "--snapshot-id" not in render(TrainArgs(**BASE, registered_model_name="m"))  # None: left out


def test_a_string_that_looks_like_a_number_stays_a_string() -> None:
    args = IngestArgs(pipeline="123", run_id="true", group_id="007")
    assert parse(IngestArgs, render(args)) == args


def test_unknown_option_is_refused() -> None:
    with pytest.raises(Exception, match="No such option: --master"):  # typer vendors its click
        parse(ProcessArgs, [*render(ProcessArgs(**BASE)), "--master", "local[2]"])


def test_missing_required_option_names_it() -> None:
    with pytest.raises(typer.BadParameter, match="--run-id"):
        parse(ProcessArgs, ["process", "--pipeline", "p"])


def test_value_the_model_refuses_names_the_option() -> None:
    argv = [*render(TrainArgs(**BASE, registered_model_name="m"))]
    argv[argv.index("--split") + 1] = '{"train":0.9,"validation":0.2,"test":0.2}'
    with pytest.raises(typer.BadParameter, match="--split"):
        parse(TrainArgs, argv)
    with pytest.raises(typer.BadParameter, match="--model-family"):
        parse(TrainArgs, ["train", "--pipeline", "p", "--run-id", "r", "--registered-model-name", "m",
                          "--model-family", "svm"])  # fmt: skip


def test_results_live_at_a_path_derived_from_pipeline_run_and_stage() -> None:
    assert result_key("adverse-event", "m1", StageName.FEATURIZE) == "runs/adverse-event/m1/featurize.json"
    with pytest.raises(ValueError, match="run id"):
        result_key("p", "a/b", "train")
    assert set(RESULTS) == set(ARGS)


def test_train_result_round_trips_through_json() -> None:
    r = TrainResult(
        pipeline="p",
        run_id="r",
        model_name="m",
        model_version=None,
        mlflow_run_id=None,
        test_auroc=None,
        promoted=False,
        gate_reasons=("no data",),
        snapshot_id="s",
    )
    assert TrainResult.model_validate_json(r.model_dump_json()) == r
