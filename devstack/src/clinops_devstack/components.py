"""What each component of the local stack runs, and how to tell it is ready.

``components(settings)`` is a pure description: argv, environment, files to write first, a
readiness probe and the URL to show. The supervisor runs it; ``make up`` and the test harness use
the same description, so what the tests start is what a developer starts.
"""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clinops_common import probes
from clinops_common.lifecycle.access import COMPONENTS
from clinops_devstack import provision as setup
from clinops_devstack import toolchain
from clinops_devstack.settings import COMPONENT_ROLES, StackSettings


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    url: str
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    # Runs once before the first start (initialise data directories, write configuration).
    prepare: Callable[[], None] | None = None
    # Runs after every start, once ready (create buckets, databases). Must be idempotent.
    provision: Callable[[], None] | None = None
    # Run as this user (PostgreSQL refuses to run as root).
    user: str | None = None
    # Components that must be ready before this one starts.
    after: tuple[str, ...] = ()


def data_dir(settings: StackSettings, name: str) -> Path:
    return settings.home / "data" / name


def _system_binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if not found:
        raise toolchain.ToolError(f"{name} not found: run `make setup`")
    return found


def _postgres_bin(tool: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))
    return _system_binary(tool, *(str(v) for v in reversed(versions)))


def _postgres_user() -> str | None:
    """PostgreSQL will not run as root: use the ``postgres`` system account then."""
    return "postgres" if os.geteuid() == 0 else None


def _chown_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for p in paths:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def kafka(s: StackSettings) -> Component:
    home = toolchain.KAFKA.home(s.cache)
    data = data_dir(s, "kafka")
    conf = data / "server.properties"
    log4j = data / "log4j.properties"
    p = s.ports

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{s.host}:{p.kafka_controller}",
                    f"listeners=PLAINTEXT://{s.host}:{p.kafka},CONTROLLER://{s.host}:{p.kafka_controller}",
                    f"advertised.listeners=PLAINTEXT://{s.host}:{p.kafka}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data / 'log'}",
                    "num.partitions=3",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        log4j.write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
        )
        if not (data / "log" / "meta.properties").exists():
            cluster_id = "-"
            while cluster_id.startswith("-"):  # the storage tool would read a leading "-" as an option
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            setup.run_checked(
                [
                    *_java(home, log4j),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(conf),
                ]
            )

    return Component(
        name="kafka",
        argv=[*_java(home, log4j), "kafka.Kafka", str(conf)],
        url=f"kafka://{s.host}:{p.kafka}",
        ready=lambda: probes.kafka_ready(f"{s.host}:{p.kafka}"),
        prepare=prepare,
    )


def _java(kafka_home: Path, log4j: Path) -> list[str]:
    return [
        _system_binary("java"),
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        str(kafka_home / "libs" / "*"),
    ]


def minio(s: StackSettings) -> Component:
    home = toolchain.MINIO.home(s.cache)
    data = data_dir(s, "minio")
    conns = s.connections()

    def provision() -> None:
        setup.ensure_lake(conns)  # object lock (bronze immutability) and the retention rules
        setup.ensure_buckets(conns, [s.mlflow_bucket])
        # one lake user and policy per component (`make env C=ingest` prints its keys)
        setup.ensure_lake_users(conns, s.lake_bucket, {c: s.s3_keys(c) for c in COMPONENTS})

    return Component(
        name="minio",
        argv=[
            str(home / "bin" / "minio"),
            "server",
            str(data),
            "--quiet",
            "--address",
            f"{s.host}:{s.ports.minio}",
            "--console-address",
            f"{s.host}:{s.ports.minio_console}",
        ],
        env={
            "MINIO_ROOT_USER": s.user,
            "MINIO_ROOT_PASSWORD": s.password.get_secret_value(),
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            # how often the scanner applies lifecycle rules ("fastest": a cycle a second, for tests)
            "MINIO_SCANNER_SPEED": s.minio_scanner_speed,
        },
        url=s.url(s.ports.minio),
        ready=lambda: probes.http_ok(f"{s.url(s.ports.minio)}/minio/health/ready"),
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
        provision=provision,
    )


def redis(s: StackSettings) -> Component:
    data = data_dir(s, "redis")
    url = s.connections().redis_url.get_secret_value()
    return Component(
        name="redis",
        argv=[
            _system_binary("redis-server", "/usr/bin/redis-server"),
            "--bind",
            s.host,
            "--port",
            str(s.ports.redis),
            "--dir",
            str(data),
            "--requirepass",
            s.password.get_secret_value(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--maxmemory-policy",
            "noeviction",
        ],
        url=f"redis://{s.host}:{s.ports.redis}",
        ready=lambda: probes.redis_ready(url),
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
    )


def postgres(s: StackSettings) -> Component:
    data = data_dir(s, "postgres")
    pgdata = data / "pgdata"
    user = _postgres_user()

    def prepare() -> None:
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o755)
        _chown_to(user, data)
        if (pgdata / "PG_VERSION").exists():
            return
        pwfile = data / "pwfile"
        pwfile.write_text(s.password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        _chown_to(user, pwfile)
        try:
            setup.run_checked(
                [
                    _postgres_bin("initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    s.user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                user=user,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def provision() -> None:
        setup.ensure_databases(
            s.postgres_url("postgres"), [s.database, s.mlflow_database, s.cohort_database, s.hospital_database]
        )
        # the schema (revision 0004 creates the roles), a login per component, this month's partitions
        setup.ensure_schema(s.postgres_url(s.database), {r: s.role_password(r) for r in COMPONENT_ROLES.values()})

    return Component(
        name="postgres",
        argv=[
            _postgres_bin("postgres"),
            "-D",
            str(pgdata),
            "-c",
            f"listen_addresses={s.host}",
            "-c",
            f"port={s.ports.postgres}",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "fsync=on",
            "-c",
            "max_connections=200",
        ],
        url=f"postgresql://{s.host}:{s.ports.postgres}/{s.database}",
        ready=lambda: probes.postgres_ready(s.postgres_url("postgres")),
        prepare=prepare,
        provision=provision,
        user=user,
    )


def mlflow(s: StackSettings) -> Component:
    conns = s.connections()
    bin_dir = Path(sys.executable).parent
    return Component(
        name="mlflow",
        argv=[
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            s.postgres_url(s.mlflow_database),
            "--artifacts-destination",
            f"s3://{s.mlflow_bucket}/",
            "--host",
            s.host,
            "--port",
            str(s.ports.mlflow),
            "--workers",
            "1",
        ],
        env={
            "MLFLOW_S3_ENDPOINT_URL": conns.s3_endpoint_url,
            "AWS_ACCESS_KEY_ID": conns.s3_access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": conns.s3_secret_key.get_secret_value(),
            "AWS_DEFAULT_REGION": conns.s3_region,
            # MLflow 3's server job runner (six huey consumers, ~1.6 GB) serves features we do not use
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
        url=s.url(s.ports.mlflow),
        ready=lambda: probes.http_ok(f"{s.url(s.ports.mlflow)}/health"),
        after=("postgres", "minio"),
    )


def ferretdb(s: StackSettings) -> Component:
    """The stroke cohort's document store: FerretDB speaks the MongoDB wire protocol, data in SQLite files."""
    home = toolchain.FERRETDB.home(s.cache)
    data = data_dir(s, "ferretdb")
    return Component(
        name="ferretdb",
        argv=[
            str(home / "bin" / "ferretdb"),
            "--listen-addr",
            f"{s.host}:{s.ports.ferretdb}",
            "--handler",
            "sqlite",
            "--sqlite-url",
            f"file:{data}/",
            "--log-level",
            "warn",
        ],
        url=f"mongodb://{s.host}:{s.ports.ferretdb}",
        ready=lambda: probes.mongodb_ready(s.mongodb_url()),
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
    )


def prometheus(s: StackSettings) -> Component:
    data = data_dir(s, "prometheus")
    conf = data / "prometheus.yml"

    def prepare() -> None:
        (data / "targets").mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"""global:
  scrape_interval: {s.scrape_interval}
  evaluation_interval: {s.scrape_interval}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["{s.host}:{s.ports.prometheus}"]
  - job_name: minio
    metrics_path: /minio/v2/metrics/cluster
    static_configs:
      - targets: ["{s.host}:{s.ports.minio}"]
  # clinops services add themselves by writing <job>.json files here.
  - job_name: clinops
    file_sd_configs:
      - files: ["{data / "targets"}/*.json"]
        refresh_interval: 5s
"""
        )

    return Component(
        name="prometheus",
        argv=[
            _system_binary("prometheus", "/usr/bin/prometheus"),
            f"--config.file={conf}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address={s.host}:{s.ports.prometheus}",
            "--storage.tsdb.retention.time=7d",
            "--log.level=warn",
        ],
        url=s.url(s.ports.prometheus),
        ready=lambda: probes.http_ok(f"{s.url(s.ports.prometheus)}/-/ready"),
        prepare=prepare,
    )


def prometheus_targets_dir(s: StackSettings) -> Path:
    """Write file-service-discovery JSON here to have the local Prometheus scrape a target."""
    return data_dir(s, "prometheus") / "targets"


BUILDERS: dict[str, Callable[[StackSettings], Component]] = {
    "postgres": postgres,
    "minio": minio,
    "redis": redis,
    "kafka": kafka,
    "mlflow": mlflow,
    "prometheus": prometheus,
    "ferretdb": ferretdb,
}


def components(settings: StackSettings, names: list[str] | None = None) -> list[Component]:
    """The components to run, in start order (dependencies first)."""
    chosen = names or list(BUILDERS)
    unknown = sorted(set(chosen) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; choose from {sorted(BUILDERS)}")
    return [BUILDERS[n](settings) for n in BUILDERS if n in chosen]
