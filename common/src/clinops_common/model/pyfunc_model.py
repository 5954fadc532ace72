"""The MLflow pyfunc of a clinops model, logged as code (no pickle): ``mlflow.pyfunc.load_model``
returns it; ``predict(frame)`` gives P(label = 1) per row from the raw feature columns."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model

from clinops_common.model.store import load


class ClinopsPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    def load_context(self, context: Any) -> None:
        self.package = load(context.artifacts["package"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.package.predict_frame(pd.DataFrame(model_input))


set_model(ClinopsPyfunc())
