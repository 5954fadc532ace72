"""``python -m clinops_common.db``: migrations, role logins and partition maintenance, as the owner.

Every command connects with ``CLINOPS_DATABASE_URL``, which must be the owner's credentials
(``clinops_owner`` or a member of it): the chart's hook Job and CronJob, and ``make up`` locally.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clinops_common.cli import command_app
from clinops_common.db import migrate, partitions, roles

app = command_app(
    "clinops-db",
    "The clinops database: migrations, role logins, monthly partitions of predictions and their retention.",
)
console = Console(soft_wrap=True)

DatabaseUrl = Annotated[
    str, typer.Option(envvar="CLINOPS_DATABASE_URL", help="The owner's SQLAlchemy URL [CLINOPS_DATABASE_URL].")
]


@app.command()
def upgrade(database_url: DatabaseUrl, revision: str = "head") -> None:
    """Apply the migrations up to REVISION (idempotent)."""
    migrate.upgrade(database_url, revision)
    console.print(f"schema at revision {migrate.current_revision(database_url)}")


@app.command("grant-login")
def grant_login(
    database_url: DatabaseUrl,
    scorer_password: Annotated[
        str | None, typer.Option(envvar="CLINOPS_DB_SCORER_PASSWORD", help="[CLINOPS_DB_SCORER_PASSWORD]")
    ] = None,
    monitor_password: Annotated[
        str | None, typer.Option(envvar="CLINOPS_DB_MONITOR_PASSWORD", help="[CLINOPS_DB_MONITOR_PASSWORD]")
    ] = None,
) -> None:
    """Give the scorer's and the monitor's roles a login with these passwords (each one given)."""
    given = {roles.SCORER: scorer_password, roles.MONITOR: monitor_password}
    if not any(given.values()):
        raise typer.BadParameter("give at least one of --scorer-password, --monitor-password")
    for role, password in given.items():
        if password:
            roles.grant_login(database_url, role, password)
            console.print(f"{role}: login enabled")


@app.command()
def maintain(
    database_url: DatabaseUrl,
    months_ahead: Annotated[
        int, typer.Option(min=0, max=24, help="Create this month's partition and this many more.")
    ] = partitions.DEFAULT_MONTHS_AHEAD,
    retention_years: Annotated[
        int,
        typer.Option(
            envvar="CLINOPS_PREDICTIONS_RETENTION_YEARS",
            min=1,
            help="Drop whole months that ended more than this many years ago [CLINOPS_PREDICTIONS_RETENTION_YEARS].",
        ),
    ] = partitions.DEFAULT_RETENTION_YEARS,
) -> None:
    """Create future monthly partitions of predictions; detach and drop the expired ones (with their labels)."""
    done = partitions.maintain(database_url, months_ahead=months_ahead, retention_years=retention_years)
    console.print(f"created: {', '.join(done.created) or 'none'}")
    console.print(f"dropped (older than {retention_years} years): {', '.join(done.dropped) or 'none'}")
    months = [p for p in done.partitions if p != "predictions_default"]
    console.print(
        f"partitions: {len(months)} months ({months[0] if months else '-'} .. {months[-1] if months else '-'})"
    )
    if done.default_rows:
        console.print(f"[yellow]predictions_default holds {done.default_rows} rows: a month was missing[/]")


if __name__ == "__main__":
    app()
