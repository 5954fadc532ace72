"""The featurize run's input fingerprint (``clinops_featurizer.inputs``): what changes it and what does not."""

from __future__ import annotations

from datetime import datetime

from clinops_common.contracts import FeaturizeArgs
from clinops_featurizer.inputs import code_identity, fingerprint, sources_digest

ARGS = FeaturizeArgs(pipeline="p", run_id="r1")
OBJECTS = [
    ("silver/measurements/date=2026-01-01/part-0.parquet", '"e1"', 10),
    ("batch/demographics/a.ndjson", '"e2"', 5),
]


def test_the_same_inputs_in_any_order_give_the_same_fingerprint_and_each_part_changes_it() -> None:
    base = fingerprint(ARGS, OBJECTS, "code")
    assert base.startswith("sha256:")
    assert fingerprint(ARGS, list(reversed(OBJECTS)), "code") == base
    assert (
        fingerprint(ARGS.model_copy(update={"pipeline": "q", "run_id": "r2", "recompute": True}), OBJECTS, "code")
        == base
    )
    (k, etag, size), rest = OBJECTS[0], OBJECTS[1:]
    changes = [
        fingerprint(ARGS, [(k, '"e9"', size), *rest], "code"),  # rewritten
        fingerprint(ARGS, [(k, etag, size + 1), *rest], "code"),
        fingerprint(ARGS, [(k.replace("part-0", "part-1"), etag, size), *rest], "code"),
        fingerprint(ARGS, rest, "code"),  # removed
        fingerprint(ARGS, [*OBJECTS, ("silver/outcomes/x.parquet", '"e3"', 1)], "code"),  # added
        fingerprint(ARGS, OBJECTS, "other code"),
        fingerprint(ARGS.model_copy(update={"start": datetime(2026, 1, 1)}), OBJECTS, "code"),
        fingerprint(ARGS.model_copy(update={"end": datetime(2026, 1, 2)}), OBJECTS, "code"),
    ]
    assert len({base, *changes}) == len(changes) + 1


def test_the_code_identity_covers_content_names_and_versions() -> None:
    files = [("a.py", b"x = 1\n"), ("b.py", b"")]
    base = sources_digest(files, [("pyspark", "4.0.1")])
    assert sources_digest(list(reversed(files)), [("pyspark", "4.0.1")]) == base
    assert sources_digest([("a.py", b"x = 2\n"), ("b.py", b"")], [("pyspark", "4.0.1")]) != base
    assert sources_digest([("a.py", b""), ("b.py", b"x = 1\n")], [("pyspark", "4.0.1")]) != base  # moved content
    assert sources_digest(files, [("pyspark", "4.0.2")]) != base
    assert code_identity().startswith("sha256:")
