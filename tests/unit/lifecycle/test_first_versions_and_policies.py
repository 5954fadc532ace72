"""Pure parts of the lake's access: which version of a name is its first, how the processor splits an
object into lines, and the least-privilege policy of each component."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clinops_common.lifecycle import access
from clinops_common.lifecycle.bucket import FirstVersion, oldest_versions
from clinops_processor.job import split_lines

T = datetime(2026, 12, 1, 10, tzinfo=UTC)


def _v(key: str, vid: str, at: datetime, latest: bool) -> dict[str, object]:
    return {"Key": key, "VersionId": vid, "LastModified": at, "IsLatest": latest}


def test_the_oldest_version_of_each_name_is_its_first_and_a_tie_goes_to_the_one_listed_later() -> None:
    listed = [  # S3 lists each name's versions newest first
        _v("a", "a3", T + timedelta(seconds=2), True),
        _v("a", "a2", T + timedelta(seconds=1), False),
        _v("a", "a1", T, False),
        _v("b", "b1", T, True),
        _v("c", "c2", T, False),  # same millisecond as c1 (the current version is a delete marker)
        _v("c", "c1", T, False),
    ]
    assert oldest_versions(listed) == {
        "a": FirstVersion("a", "a1", current=False),
        "b": FirstVersion("b", "b1", current=True),
        "c": FirstVersion("c", "c1", current=False),
    }
    assert oldest_versions([]) == {}


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        (b"", []),
        (b"a\n", ["a"]),
        (b"a\nb", ["a", "b"]),
        (b"a\r\nb\r\n", ["a", "b"]),
        (b'{"x": "\xe2\x80\xa8"}\n', ['{"x": "\u2028"}']),  # a line separator inside JSON is not a line end
    ],
)
def test_an_object_splits_into_lines_as_sparks_text_reader_splits_it(body: bytes, lines: list[str]) -> None:
    assert split_lines(body) == lines


def _actions(component: access.Component, bucket: str = "lake") -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for st in access.policy(component, bucket)["Statement"]:
        assert st["Effect"] == "Allow"
        for resource in st["Resource"]:
            out.setdefault(resource, set()).update(st["Action"])
    return out


def test_only_ingest_may_add_to_bronze_and_nobody_may_delete_there_or_remove_a_version() -> None:
    for component in access.COMPONENTS:
        granted = _actions(component)
        bronze = granted.get("arn:aws:s3:::lake/bronze/*", set())
        assert "s3:DeleteObject" not in bronze
        assert all("s3:DeleteObjectVersion" not in actions for actions in granted.values())
        assert ("s3:PutObject" in bronze) == (component == "ingest")
        assert all("*" not in a for actions in granted.values() for a in actions)  # no wildcard actions
    ingest = _actions("ingest")
    assert "s3:GetObject" not in ingest["arn:aws:s3:::lake/bronze/*"]
    assert _actions("processor")["arn:aws:s3:::lake/bronze/*"] == {"s3:GetObject", "s3:GetObjectVersion"}
    assert "s3:PutLifecycleConfiguration" in _actions("lifecycle")["arn:aws:s3:::lake"]
    assert set(_actions("operator")) == {"arn:aws:s3:::lake", "arn:aws:s3:::lake/runs/*"}


def test_an_unknown_component_has_no_policy() -> None:
    with pytest.raises(ValueError, match="unknown component"):
        access.policy("everyone", "lake")  # type: ignore[arg-type]
