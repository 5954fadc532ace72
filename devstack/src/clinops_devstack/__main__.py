"""``python -m clinops_devstack``: build the pinned infrastructure and run the local stack."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clinops_common.lifecycle.access import COMPONENTS
from clinops_devstack import cluster, node, oci, spark_operator, supervisor, toolchain
from clinops_devstack import components as comps
from clinops_devstack.settings import StackSettings

app = typer.Typer(
    help="The local clinops stack: Kafka, MinIO, Redis, PostgreSQL, MLflow and Prometheus on loopback.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
Names = Annotated[list[str] | None, typer.Argument(help=f"Components (default: all of {list(comps.BUILDERS)}).")]


def _say(msg: str) -> None:
    console.print(f"  {msg}")


@app.command()
def tools() -> None:
    """Build the pinned infrastructure (Kafka, MinIO, Spark s3a jars, Feast reference, Kubernetes tools) if missing."""
    s = StackSettings()
    console.print(f"[bold]Pinned infrastructure[/] in {s.cache}")
    for i, tool in enumerate(toolchain.TOOLS, 1):
        label = f"[{i}/{len(toolchain.TOOLS)}] {tool.name} {tool.version}"
        if tool.ready(s.cache):
            console.print(f"  {label}: cached")
            continue
        t0 = time.monotonic()
        with console.status(f"  {label}: building (first time only)..."):
            try:
                tool.ensure(s.cache)
            except toolchain.ToolError as err:
                console.print(f"[red]  {label}: failed[/]\n{err}")
                raise typer.Exit(1) from err
        console.print(f"  {label}: built in {time.monotonic() - t0:.0f}s")


@app.command()
def up(names: Names = None) -> None:
    """Start the stack (or the named components) and wait until each is ready. Safe to repeat."""
    s = StackSettings()
    console.print(f"[bold]Starting the local stack[/] (data in {s.home})")
    try:
        for comp in comps.components(s, names):
            supervisor.start(s, comp, _say)
    except (supervisor.StartError, toolchain.ToolError, ValueError) as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from err
    _print_status(s, names)


@app.command()
def down(names: Names = None) -> None:
    """Stop exactly the processes `up` started (dependants first)."""
    s = StackSettings()
    for comp in reversed(comps.components(s, names)):
        supervisor.stop(s, comp.name, _say)


@app.command()
def status(names: Names = None) -> None:
    """One line per component: healthy, unhealthy or stopped, with its URL. Exit 1 unless all healthy."""
    if not _print_status(StackSettings(), names):
        raise typer.Exit(1)


def _print_status(s: StackSettings, names: list[str] | None) -> bool:
    table = Table("component", "state", "url", "pid", box=None)
    all_ok = True
    for comp in comps.components(s, names):
        st = supervisor.status(s, comp)
        all_ok &= st.healthy
        colour = {"healthy": "green", "unhealthy": "red", "stopped": "yellow"}[st.state]
        table.add_row(st.name, f"[{colour}]{st.state}[/]", st.url, str(st.pid or "-"))
    console.print(table)
    console.print(f"data and logs: {s.home} (`make logs` shows the ends of the logs)")
    return all_ok


@app.command()
def logs(
    names: Names = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines per component.")] = 20,
) -> None:
    """Print the end of each component's log."""
    s = StackSettings()
    for comp in comps.components(s, names):
        path = supervisor.log_path(s, comp.name)
        console.rule(f"{comp.name} ({path})")
        text = path.read_text(errors="replace") if path.exists() else "(no log yet)\n"
        sys.stdout.write("\n".join(text.splitlines()[-lines:]) + "\n")


@app.command()
def smoke() -> None:
    """Round-trip real data through every component of the running stack and say what happened."""
    import tempfile
    from pathlib import Path

    from clinops_devstack import smoke as checks

    s = StackSettings()
    conns = s.connections()
    with tempfile.TemporaryDirectory(prefix="clinops-smoke-") as tmp:
        steps: list[Callable[[], checks.Result]] = [
            lambda: checks.kafka_roundtrip(conns),
            lambda: checks.s3_roundtrip(conns),
            lambda: checks.spark_s3a_roundtrip(conns),
            lambda: checks.redis_roundtrip(conns),
            lambda: checks.postgres_migrate(conns),
            lambda: checks.mlflow_run(conns, Path(tmp)),
            lambda: checks.prometheus_scrape(s.url(s.ports.prometheus), comps.prometheus_targets_dir(s)),
        ]
        for step in steps:
            t0 = time.monotonic()
            result = step()
            console.print(f"  [green]ok[/] {result.component:<10} {result.summary} ({time.monotonic() - t0:.1f}s)")


@app.command("cluster-up")
def cluster_up(
    nodes: Annotated[int, typer.Option(help="How many fake kwok nodes to create.")] = cluster.DEFAULT_NODES,
    real_node: Annotated[
        bool, typer.Option(help="Also start the real node (containerd, runc, kubelet; needs root).")
    ] = True,
    spark_namespace: Annotated[
        list[str] | None,
        typer.Option(
            help="Also run the real spark-operator (controller and webhook, local processes) for the "
            "SparkApplications of this namespace (repeatable); label a pipeline "
            "clinops.io/spark-runner=spark-operator so that kwok's stand-in leaves its applications to it."
        ),
    ] = None,
) -> None:
    """Start the local Kubernetes control plane (etcd, apiserver, controller manager, scheduler, kwok)
    and one real kubelet node beside the kwok nodes."""
    s = StackSettings()
    console.print(f"[bold]Starting the local control plane[/] (data in {cluster.cluster_dir(s)})")
    t0 = time.monotonic()
    try:
        for comp in cluster.components(s):
            supervisor.start(s, comp, _say)
        cluster.provision(s, nodes=nodes)
        if real_node:
            for comp in node.components(s):
                supervisor.start(s, comp, _say)
        if spark_namespace:
            for ns in spark_namespace:
                if not cluster.kubectl(s, "get", "namespace", ns, "--ignore-not-found").strip():
                    cluster.kubectl(s, "create", "namespace", ns)
            for comp in spark_operator.components(s, spark_namespace):
                supervisor.start(s, comp, _say)
    except (supervisor.StartError, toolchain.ToolError, cluster.ClusterError, node.NodeError) as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from err
    console.print(f"control plane ready in {time.monotonic() - t0:.1f}s")
    sys.stdout.write(cluster.kubectl(s, "get", "nodes"))
    bin_dir = cluster.link_tools(s)
    console.print(f"admin kubeconfig: {cluster.admin_kubeconfig(s)}; pinned kubectl and helm in {bin_dir}")
    console.print(f"try: export KUBECONFIG={cluster.admin_kubeconfig(s)}; kubectl get nodes")


@app.command("cluster-down")
def cluster_down() -> None:
    """Stop the local control plane (its data stays in .local/data/kube; `make clean` removes it)."""
    s = StackSettings()
    for name in ("spark-operator-controller", "spark-operator-webhook"):  # `cluster-up --spark-namespace`
        supervisor.stop(s, name, _say)
    if supervisor.running_pid(s, "kube-apiserver") is not None:
        spark_operator.unregister_webhooks(s)
    node.down(s, _say)  # first: its pods and kubelet need the API server and containerd to go cleanly
    for name in reversed(cluster.BUILDERS):  # by name: stopping needs no built tools
        supervisor.stop(s, name, _say)
    left = node.leftovers(s)
    if left:
        console.print(f"[red]left behind by the real node:[/] {left}")
        raise typer.Exit(1)


@app.command("cluster-status")
def cluster_status() -> None:
    """One line per control-plane process. Exit 1 unless all are healthy."""
    s = StackSettings()
    table = Table("component", "state", "url", "pid", box=None)
    all_ok = True
    for comp in cluster.components(s):
        st = supervisor.status(s, comp)
        all_ok &= st.healthy
        table.add_row(st.name, st.state, st.url, str(st.pid or "-"))
    for comp in node.components(s):  # the real node is optional (`cluster-up --no-real-node`)
        st = supervisor.status(s, comp)
        all_ok &= st.healthy or st.pid is None
        table.add_row(st.name, st.state, st.url, str(st.pid or "-"))
    console.print(table)
    if not all_ok:
        raise typer.Exit(1)


@app.command()
def image(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Images to build (default: clinops and clinops-trainer, which adds torch)."),
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Tag (default: the chart's appVersion).")] = None,
    load: Annotated[bool, typer.Option(help="Import into the real node's containerd when it runs.")] = True,
) -> None:
    """Build the clinops images without a container engine (system / Python env / code layers, cached)."""
    from clinops_devstack import image as images

    s = StackSettings()
    for name in names or ["clinops", "clinops-trainer"]:
        t0 = time.monotonic()
        console.print(f"[bold]image {name}[/]")
        try:
            built = images.build(s, name, _say, tag=tag)
            console.print(
                f"  {built.ref}: {built.size / 1e6:.0f} MB in {len(built.layers)} layers, "
                f"OCI layout {built.layout} ({time.monotonic() - t0:.0f}s)"
            )
            if load and node.containerd_ready(s):
                t1 = time.monotonic()
                images.import_into_node(s, built)
                console.print(f"  imported into the real node's containerd ({time.monotonic() - t1:.0f}s)")
            elif load:
                console.print("  the real node is not running (`make cluster-up`): not imported")
        except (images.ImageBuildError, toolchain.ToolError, oci.ImageError) as err:
            console.print(f"[red]{err}[/]")
            raise typer.Exit(1) from err


@app.command()
def env(
    component: Annotated[
        str | None,
        typer.Argument(
            help="A component: its own lake user (ingest, processor, featurizer, trainer, scorer, monitor, operator,"
            " lifecycle) and, for the scorer and the monitor, its own database role. Default: the admin's."
        ),
    ] = None,
) -> None:
    """Print `export CLINOPS_*=...` lines that point clients at the local stack (contains dev secrets)."""
    if component is not None and component not in COMPONENTS:
        console.print(f"[red]unknown component {component!r}: one of {', '.join(COMPONENTS)}[/]")
        raise typer.Exit(2)
    for key, value in StackSettings().env(component=component).items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")


if __name__ == "__main__":
    app()
