"""A pipeline's long-running children: ingest and the streaming featurizer, one of each per pipeline.

Runs come and go; these stay up as long as the pipeline exists. A streaming pipeline has two:

* ``<pipeline>-ingest``: ``python -m clinops_ingest run``, the spec's Kafka topics to bronze, in the
  spec's consumer group (``sources.kafka.consumerGroup``, default ``clinops-<pipeline>``), topic
  names with ``sources.kafka.topicPrefix`` in front when it is set;
* ``<pipeline>-stream``: ``python -m clinops_featurizer.stream stream``, vitals and labs to the online
  store seconds after each event (its own group: it commits no offsets, the group only assigns
  partitions).

A batch pipeline (the stroke service) has none. On a cluster each is a Deployment with one replica
(``render.deployment``); the local executor keeps each as a supervised process, started again when it
has died. Both carry the stages' ``CLINOPS_*`` connection variables and secret references.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from clinops_common.lake import TOPICS
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import (
    BATCH_SERVICE,
    LABEL_PIPELINE,
    MANAGED_BY,
    MAX_NAME,
    SecretEnv,
    Stage,
    connection_env,
)
from clinops_operator.errors import InvalidSpecError

LABEL_SERVICE = "clinops.io/service"
Env = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ServiceTask:
    """One long-running child of one pipeline (executor-neutral, like ``StageTask``)."""

    component: str  # ingest | stream
    name: str
    namespace: str
    pipeline: str
    image: str
    module: str  # python -m <module>
    args: tuple[str, ...]
    env: Env
    secret_env: tuple[SecretEnv, ...]
    labels: dict[str, str] = field(default_factory=dict)


def service_name(pipeline: str, component: str) -> str:
    name = f"{pipeline}-{component}"
    if len(name) > MAX_NAME:
        raise InvalidSpecError(f"child name {name!r} is longer than {MAX_NAME} characters: shorten the pipeline's name")
    return name


def service_labels(p: Pipeline, component: str) -> dict[str, str]:
    return {
        **p.labels,
        "app.kubernetes.io/name": "clinops",
        "app.kubernetes.io/instance": p.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "clinops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_PIPELINE: p.name,
        LABEL_SERVICE: component,
    }


def service_tasks(p: Pipeline) -> tuple[ServiceTask, ...]:
    """The long-running children ``p`` needs (none for a batch pipeline or one without Kafka)."""
    kafka = p.spec.sources.kafka
    if p.spec.features.service == BATCH_SERVICE or kafka is None:
        return ()
    env, ingest_secrets = connection_env(p, Stage.INGEST)  # each child holds its own lake policy
    _, stream_secrets = connection_env(p, Stage.FEATURIZER)
    topics = [t for t in kafka.topics if t in TOPICS]
    group = kafka.consumer_group or f"clinops-{p.name}"
    prefix = (("--topic-prefix", kafka.topic_prefix),) if kafka.topic_prefix else ()
    ingest_args = ("run", "--group-id", group, *[a for pair in prefix for a in pair])
    stream_args = ("stream", *[a for pair in prefix for a in pair])
    ingest_env = (*env, ("CLINOPS_INGEST_TOPICS", json.dumps(topics)))

    def svc(
        component: str, image: str, module: str, args: tuple[str, ...], extra: Env, *, secrets: tuple[SecretEnv, ...]
    ) -> ServiceTask:
        return ServiceTask(
            component=component,
            name=service_name(p.name, component),
            namespace=p.namespace,
            pipeline=p.name,
            image=image,
            module=module,
            args=args,
            env=extra,
            secret_env=secrets,
            labels=service_labels(p, component),
        )

    stream_env = (*env, ("CLINOPS_STREAM_GROUP_ID", f"{group}-stream"))
    return (
        svc("ingest", p.spec.images.ingest, "clinops_ingest", ingest_args, ingest_env, secrets=ingest_secrets),
        svc(
            "stream",
            p.spec.images.featurizer,
            "clinops_featurizer.stream",
            stream_args,
            stream_env,
            secrets=stream_secrets,
        ),
    )
