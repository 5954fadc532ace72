"""Property-based API tests with schemathesis against the scorer's own OpenAPI document: whatever
the body (valid, or deliberately invalid: wrong types, missing or extra fields, oversized batches),
never a 5xx, and every documented answer matches its schema."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from scorer_helpers import ScorerProcess


def test_no_server_error_and_no_schema_violation(scorer: ScorerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{scorer.url}/docs.json").include(path_regex="^/predict")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/predict", "/predict/batch"}
    calls: list[int] = []
    for op in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=scorer.url, checks=[not_a_server_error, response_schema_conformance], timeout=10
                )
                calls.append(response.status_code)

            check()
    assert len(calls) >= 4 * 10
    assert all(code < 500 for code in calls)
    assert any(code == 400 for code in calls)  # the negative cases were refused, not scored
