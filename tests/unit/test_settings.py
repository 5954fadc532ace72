from __future__ import annotations

import pytest

from clinops_common.settings import Connections
from clinops_devstack.settings import Ports, StackSettings


def test_connections_round_trip_through_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = StackSettings(ports=Ports(kafka=1111, redis=2222, postgres=3333)).connections()
    for key, value in original.as_env().items():
        monkeypatch.setenv(key, value)
    assert Connections() == original
    assert Connections().kafka_bootstrap_servers == "127.0.0.1:1111"


def test_stack_settings_read_nested_port_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINOPS_STACK_PORTS__MINIO", "29000")
    s = StackSettings()
    assert s.ports.minio == 29000
    assert s.connections().s3_endpoint_url == "http://127.0.0.1:29000"


def test_secrets_are_not_shown_in_repr() -> None:
    conns = StackSettings().connections()
    secret = conns.s3_secret_key.get_secret_value()
    assert secret not in repr(conns)
    assert secret not in str(conns.database_url)
