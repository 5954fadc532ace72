"""The stage contract: typed arguments in, typed results out, for every stage of a run.

* ``stages``: one pydantic model per stage for its arguments and one for its result;
* ``argv``: an arguments model to a command line (the operator) and back (the stage's CLI);
* ``results``: a result as a JSON document in the lake, at a path derived from pipeline, run id and stage.
"""

from clinops_common.contracts.argv import option, parse, render, stage_command
from clinops_common.contracts.results import read_result, result_key, write_result
from clinops_common.contracts.stages import (
    ARGS,
    RESULTS,
    FeaturizeArgs,
    FeaturizeResult,
    IngestArgs,
    IngestResult,
    MaterializeArgs,
    MaterializeResult,
    ModelFamily,
    ProcessArgs,
    ProcessResult,
    Split,
    StageArgs,
    StageName,
    StageResult,
    StrokeArgs,
    StrokeResult,
    TrainArgs,
    TrainResult,
)

__all__ = [
    "ARGS",
    "RESULTS",
    "FeaturizeArgs",
    "FeaturizeResult",
    "IngestArgs",
    "IngestResult",
    "MaterializeArgs",
    "MaterializeResult",
    "ModelFamily",
    "ProcessArgs",
    "ProcessResult",
    "Split",
    "StageArgs",
    "StageName",
    "StageResult",
    "StrokeArgs",
    "StrokeResult",
    "TrainArgs",
    "TrainResult",
    "option",
    "parse",
    "read_result",
    "render",
    "result_key",
    "stage_command",
    "write_result",
]
