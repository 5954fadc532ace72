"""``python -m clinops_common.lifecycle``: the lake's retention rules (apply, show), its bucket with
object lock, and the offline store's sweep. Run with the lake's admin credentials (``CLINOPS_S3_*``):
``make up`` locally, the chart's hook Job and CronJob on a cluster."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from clinops_common.cli import command_app
from clinops_common.lifecycle import access, bucket, rules
from clinops_common.settings import LakeConnection
from clinops_common.storage import s3_client

app = command_app(
    "clinops-lifecycle",
    "The lake's data lifecycle: retention rules per layer, object lock for bronze, the offline-store sweep.",
)
console = Console(soft_wrap=True)


@app.command("create-bucket")
def create_bucket() -> None:
    """Create the lake bucket with object lock (and so versioning) unless it exists; refuse one without lock."""
    conns = LakeConnection()
    try:
        created = bucket.create_lake_bucket(s3_client(conns), conns.lake_bucket)
    except bucket.LakeNotLockable as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
    console.print(f"{conns.lake_bucket}: {'created with object lock' if created else 'exists, object lock enabled'}")


@app.command()
def apply() -> None:
    """Set the lake bucket's clinops-* lifecycle rules from CLINOPS_RETENTION_* (idempotent; other rules kept)."""
    conns = LakeConnection()
    changed = bucket.apply_rules(s3_client(conns), conns.lake_bucket, rules.layer_rules(rules.RetentionSettings()))
    console.print(f"{conns.lake_bucket}: lifecycle rules {'applied' if changed else 'unchanged'}")
    _show(conns)


@app.command()
def show() -> None:
    """Print each layer's rule as the bucket holds it, and whether object lock protects bronze."""
    _show(LakeConnection())


def _show(conns: LakeConnection) -> None:
    s3 = s3_client(conns)
    current = {r.get("ID"): rules.normalise(r) for r in bucket.current_rules(s3, conns.lake_bucket)}
    for layer in rules.layer_rules(rules.RetentionSettings()):
        held = current.pop(layer.rule_id, None)
        if held is None:
            console.print(f"{layer.layer:<17} {layer.prefix:<18} [red]missing: run apply[/]")
            continue
        exp = held.get("Expiration", {})
        age = f"{exp['Days']} days after write" if "Days" in exp else str(exp.get("Date", "never by age"))
        nc = held.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        status = "ok" if held == layer.to_s3() else "[yellow]differs from settings: run apply[/]"
        console.print(
            f"{layer.layer:<17} {held['Filter']['Prefix']:<18} current: {age:<20}"
            f" noncurrent: {f'{nc} days' if nc else '-':<9} {status}  ({layer.why})"
        )
    for rid, held in current.items():
        console.print(f"{'(not ours) ' + str(rid):<17} {held['Filter']['Prefix']:<18} {held.get('Expiration', '-')}")
    lock = bucket.lock_state(s3, conns.lake_bucket)
    console.print(
        f"object lock: {'enabled' if lock.enabled else '[red]disabled[/]'}, versioning: {lock.versioning or 'off'}"
        " (ingest writes bronze and dead letters COMPLIANCE-locked for their retention, conditionally)"
    )


@app.command()
def policy(
    component: Annotated[str, typer.Argument(help=f"One of: {', '.join(access.COMPONENTS)}.")],
    bucket_name: Annotated[
        str | None, typer.Option("--bucket", help="Lake bucket (default: CLINOPS_LAKE_BUCKET, else lake).")
    ] = None,
) -> None:
    """Print a component's least-privilege S3 policy on the lake bucket (JSON, for `mc admin policy create`)."""
    if component not in access.COMPONENTS:
        console.print(f"[red]unknown component {component!r}: one of {', '.join(access.COMPONENTS)}[/]")
        raise typer.Exit(2)
    name = bucket_name or os.environ.get("CLINOPS_LAKE_BUCKET", "lake")
    typer.echo(json.dumps(access.policy(component, name), indent=2))


@app.command()
def sweep(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
    mlflow_tracking_uri: Annotated[
        str | None, typer.Option(envvar="CLINOPS_MLFLOW_TRACKING_URI", help="Registry naming snapshots to keep.")
    ] = None,
) -> None:
    """Expire offline snapshots older than CLINOPS_RETENTION_OFFLINE_FEATURES_DAYS (never the newest or one a
    registered model version names), then delete files no kept snapshot lists, older than the grace period."""
    from clinops_common.features.offline import OfflineStore
    from clinops_common.lifecycle import sweep as sw

    if not mlflow_tracking_uri:
        console.print("[red]CLINOPS_MLFLOW_TRACKING_URI is required: a snapshot a model names must never go[/]")
        raise typer.Exit(2)
    settings = rules.RetentionSettings()
    store = OfflineStore.for_lake(LakeConnection())
    todo = sw.plan(
        sw.snapshots(store),
        store.latest_id(),
        sw.named_snapshots(mlflow_tracking_uri),
        sw.stored_files(store),
        now=datetime.now(UTC),
        retention=timedelta(days=settings.offline_features_days),
        grace=timedelta(hours=settings.sweep_grace_hours),
    )
    for sid, why in todo.kept.items():
        console.print(f"keep snapshot {sid} ({why})")
    verb = "would expire" if dry_run else "expire"
    for sid in todo.expired:
        console.print(f"{verb} snapshot {sid}")
    for rel in todo.deleted:
        console.print(f"{'would delete' if dry_run else 'delete'} {rel}")
    if not dry_run:
        sw.execute(store, todo)
    console.print(
        f"{len(todo.kept)} snapshots kept ({todo.kept_files} files), {len(todo.expired)} expired,"
        f" {len(todo.deleted)} files {'to delete' if dry_run else 'deleted'},"
        f" {len(todo.spared_young)} unlisted files inside the {settings.sweep_grace_hours} h grace period"
    )


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app()
