"""The command-line skeleton every service shares: ``python -m clinops_<service> --help``.

A missing setting (``MissingSettingsError``) ends any command at once with a message naming the
variables to set (exit 2), not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from clinops_common import probes
from clinops_common.settings import Connections, MissingSettingsError
from clinops_common.storage import s3_client

Dependency = Literal["kafka", "s3", "redis", "postgres", "mlflow"]


def _s3_ok(c: Connections) -> bool:
    try:
        s3_client(c).head_bucket(Bucket=c.lake_bucket)
    except (BotoCoreError, ClientError):
        return False
    return True


CHECKS: dict[Dependency, tuple[Callable[[Connections], bool], Callable[[Connections], str]]] = {
    "kafka": (
        lambda c: probes.kafka_ready(c.kafka_bootstrap_servers),
        lambda c: c.kafka_bootstrap_servers,
    ),
    "s3": (_s3_ok, lambda c: f"{c.s3_endpoint_url}/{c.lake_bucket}"),
    "redis": (
        lambda c: probes.redis_ready(c.redis_url.get_secret_value()),
        lambda _c: "CLINOPS_REDIS_URL",
    ),
    "postgres": (
        lambda c: probes.postgres_ready(c.database_url.get_secret_value()),
        lambda _c: "CLINOPS_DATABASE_URL",
    ),
    "mlflow": (
        lambda c: probes.http_ok(f"{c.mlflow_tracking_uri}/health"),
        lambda c: c.mlflow_tracking_uri,
    ),
}


EXIT_CONFIG = 2


class ServiceApp(typer.Typer):
    """A service's Typer app: settings errors become one line on stderr and exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except MissingSettingsError as err:
            Console(stderr=True, soft_wrap=True).print(f"[red]{self.info.name}: {err}[/]")
            raise SystemExit(EXIT_CONFIG) from None


def command_app(name: str, summary: str) -> typer.Typer:
    """A Typer app named ``name`` with the project's conventions (help without arguments, no
    completion, plain tracebacks)."""
    app = ServiceApp(help=summary, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.info.name = name
    return app


def service_app(name: str, summary: str, needs: list[Dependency]) -> typer.Typer:
    """A Typer app for a service, with ``check``: can it reach what it depends on?"""
    app = command_app(name, summary)
    console = Console(soft_wrap=True)

    @app.callback()
    def main() -> None:
        """Settings come from CLINOPS_* environment variables (`make env` prints the local stack's)."""

    @app.command()
    def check() -> None:
        """Check that this service reaches each system it needs (configured by CLINOPS_* variables)."""
        conns = Connections()
        ok = True
        for dep in needs:
            probe, where = CHECKS[dep]
            reachable = probe(conns)
            ok &= reachable
            console.print(f"{dep:<9} {'[green]ok[/]' if reachable else '[red]unreachable[/]'}  {where(conns)}")
        if not ok:
            raise typer.Exit(1)

    return app
