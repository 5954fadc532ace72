from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clinops_devstack import components as comps
from clinops_devstack import supervisor, toolchain
from clinops_devstack.settings import Ports, StackSettings


def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(home=tmp_path, cache=tmp_path / "cache", ports=Ports(kafka=1234, kafka_controller=1235))


def test_components_start_dependencies_first(tmp_path: Path) -> None:
    names = [c.name for c in comps.components(settings(tmp_path))]
    for comp in comps.components(settings(tmp_path)):
        for dep in comp.after:
            assert names.index(dep) < names.index(comp.name)


def test_unknown_component_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown component.*zookeeper"):
        comps.components(settings(tmp_path), ["kafka", "zookeeper"])


def test_kafka_is_configured_as_single_node_kraft_on_the_chosen_ports(tmp_path: Path) -> None:
    kafka = comps.kafka(settings(tmp_path))
    assert kafka.argv[-2:] == [
        "kafka.Kafka",
        str(tmp_path / "data" / "kafka" / "server.properties"),
    ]
    assert kafka.url == "kafka://127.0.0.1:1234"


def a_sleeper(s: StackSettings, name: str = "sleeper") -> comps.Component:
    return comps.Component(
        name=name,
        argv=[sys.executable, "-c", "import time; time.sleep(60)"],
        url="-",
        ready=lambda: True,
    )


def test_stop_signals_exactly_the_process_start_launched(tmp_path: Path) -> None:
    s = settings(tmp_path)
    supervisor.start(s, a_sleeper(s), say=lambda _: None)
    pid = supervisor.running_pid(s, "sleeper")
    assert pid is not None
    supervisor.stop(s, "sleeper", say=lambda _: None)
    assert supervisor.running_pid(s, "sleeper") is None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_stale_pid_file_is_ignored_not_signalled(tmp_path: Path) -> None:
    s = settings(tmp_path)
    (tmp_path / "run").mkdir()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # Same pid, wrong start time: that pid belongs to someone else now.
        (tmp_path / "run" / "sleeper.pid").write_text(f"{bystander.pid} 1\n")
        assert supervisor.running_pid(s, "sleeper") is None
        supervisor.stop(s, "sleeper", say=lambda _: None)
        assert bystander.poll() is None, "a process we did not start must not be signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_component_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    s = settings(tmp_path).model_copy(update={"start_timeout_s": 20})
    dying = comps.Component(
        name="dying",
        argv=[sys.executable, "-c", "print('bad config line 3'); raise SystemExit(3)"],
        url="-",
        ready=lambda: False,
    )
    with pytest.raises(supervisor.StartError, match=r"(?s)exited with code 3.*bad config line 3"):
        supervisor.start(s, dying, say=lambda _: None)


def test_a_failed_build_never_looks_ready(tmp_path: Path) -> None:
    def broken(home: Path) -> None:
        (home / "half.jar").write_text("x")
        raise toolchain.ToolError("network went away")

    tool = toolchain.Tool("thing", "1.0", "half.jar", broken)
    with pytest.raises(toolchain.ToolError):
        tool.ensure(tmp_path)
    assert not tool.ready(tmp_path)
    with pytest.raises(toolchain.ToolError, match="make setup"):
        toolchain.require(tool, tmp_path)


def test_a_built_tool_is_not_built_again(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(home: Path) -> None:
        calls.append(home)
        (home / "bin").mkdir()
        (home / "bin" / "tool").write_text("#!/bin/sh\n")

    tool = toolchain.Tool("thing", "2.0", "bin/tool", build)
    assert tool.ensure(tmp_path) is True
    assert tool.ensure(tmp_path) is False
    assert len(calls) == 1
    assert tool.home(tmp_path) == tmp_path / "thing-2.0"
