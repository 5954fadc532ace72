"""The real spark-operator on the local cluster: its controller and its mutating webhook, as local processes.

kubeflow/spark-operator at the version whose CRD the cluster installs (``toolchain.SPARK_OPERATOR``,
built from its Go module by ``make setup``) runs here as two processes on this machine, not as pods:

- ``spark-operator controller start`` watches SparkApplications and submits each with
  ``$SPARK_HOME/bin/spark-submit``; SPARK_HOME is the pyspark of the project's own environment (the
  same Spark as the images'), which ships spark-submit and the spark-kubernetes jar. spark-submit
  reaches the API server with the admin kubeconfig (``KUBECONFIG``) at
  ``KUBERNETES_SERVICE_HOST:PORT`` (loopback: no kube-proxy here). It then follows the driver pod and
  moves the application through SUBMITTED, RUNNING and COMPLETED or FAILED.
- ``spark-operator webhook start`` serves the pod and SparkApplication webhooks on loopback: the
  driver's and executors' security context, volumes, host network, tolerations and secret
  environment reach their pods only through it. It makes its own CA and serving certificate (valid
  for ``localhost``), keeps them in a Secret, and writes the CA into the webhook configurations that
  ``register_webhooks`` creates (``clientConfig.url: https://localhost:<port>/...``), so the API
  server trusts it.

Why processes: the controller only talks to the API server and runs spark-submit, which needs Java and
Spark's jars, both already on this machine; the webhook must be reachable from the API server, which
listens on loopback. As pods they would need an image of their own and the host network anyway.

Both act only in the namespaces given (``--namespaces``, the webhooks' ``namespaceSelector``), and
kwok's stand-in leaves alone the applications labelled ``clinops.io/spark-runner=spark-operator`` (a
pipeline labelled so passes the label to its children): the local cluster's other SparkApplications
stay with kwok's stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from clinops_devstack import cluster, toolchain
from clinops_devstack.components import Component, data_dir
from clinops_devstack.settings import StackSettings

WEBHOOK_NAME = "clinops-spark-operator-webhook"
WEBHOOK_SECRET = "spark-operator-webhook-certs"  # noqa: S105 - a Secret's name
WEBHOOK_NAMESPACE = "spark-operator"
# controller-runtime's paths for the webhooks spark-operator registers (its chart's configurations).
MUTATING = (
    ("mutate--v1-pod", "", "v1", "pods", True),
    (
        "mutate-sparkoperator-k8s-io-v1beta2-sparkapplication",
        "sparkoperator.k8s.io",
        "v1beta2",
        "sparkapplications",
        False,
    ),
)
VALIDATING = (
    (
        "validate-sparkoperator-k8s-io-v1beta2-sparkapplication",
        "sparkoperator.k8s.io",
        "v1beta2",
        "sparkapplications",
        False,
    ),
)
RUNNER_LABEL = "clinops.io/spark-runner"  # kwok's stand-in (kwok/stages.yaml) skips applications labelled
RUNNER = "spark-operator"  # <RUNNER_LABEL>=<RUNNER>
LAUNCHED_BY = "sparkoperator.k8s.io/launched-by-spark-operator"


def binary(s: StackSettings) -> str:
    return str(toolchain.require(toolchain.SPARK_OPERATOR, s.cache) / "bin" / "spark-operator")


def spark_home() -> Path:
    """pyspark's folder: spark-submit and Spark's jars, the Spark the images run."""
    import pyspark

    return Path(pyspark.__file__).parent


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _common_flags(s: StackSettings, namespaces: Sequence[str], health_port: int) -> list[str]:
    return [
        f"--kubeconfig={cluster.admin_kubeconfig(s)}",
        f"--namespaces={','.join(namespaces)}",
        f"--health-probe-bind-address={s.host}:{health_port}",
        "--metrics-bind-address=0",  # no metrics endpoint
        "--zap-log-level=info",
    ]


def webhook(s: StackSettings, namespaces: Sequence[str]) -> Component:
    certs = data_dir(s, "spark-operator") / "webhook-certs"
    health = f"http://{s.host}:{s.ports.spark_operator_webhook_health}/readyz"

    def prepare() -> None:
        certs.mkdir(parents=True, exist_ok=True)
        # Both processes watch every kind spark-operator serves (ScheduledSparkApplication, SparkConnect
        # too): its CRDs, from the same module version as the SparkApplication CRD the cluster has.
        folder = toolchain.require(toolchain.SPARK_OPERATOR_CRDS, s.cache)
        cluster.install_crds(s, sorted(folder.glob("*.yaml")))
        if not cluster.kubectl(s, "get", "namespace", WEBHOOK_NAMESPACE, "--ignore-not-found").strip():
            cluster.kubectl(s, "create", "namespace", WEBHOOK_NAMESPACE)
        register_webhooks(s, namespaces)  # before the webhook starts: it writes its CA into them

    return Component(
        name="spark-operator-webhook",
        argv=[
            binary(s),
            "webhook",
            "start",
            *_common_flags(s, namespaces, s.ports.spark_operator_webhook_health),
            f"--webhook-port={s.ports.spark_operator_webhook}",
            f"--webhook-cert-dir={certs}",
            f"--webhook-secret-name={WEBHOOK_SECRET}",
            f"--webhook-secret-namespace={WEBHOOK_NAMESPACE}",
            f"--webhook-svc-name={WEBHOOK_NAME}",
            f"--webhook-svc-namespace={WEBHOOK_NAMESPACE}",
            f"--mutating-webhook-name={WEBHOOK_NAME}",
            f"--validating-webhook-name={WEBHOOK_NAME}",
        ],
        url=f"https://localhost:{s.ports.spark_operator_webhook}",
        ready=lambda: _ok(health) and _ca_injected(s),
        prepare=prepare,
        after=("kube-apiserver",),
    )


def controller(s: StackSettings, namespaces: Sequence[str]) -> Component:
    home = spark_home()
    return Component(
        name="spark-operator-controller",
        argv=[
            binary(s),
            "controller",
            "start",
            *_common_flags(s, namespaces, s.ports.spark_operator_health),
            "--enable-ui-service=false",  # no Service per application for the Spark UI
            "--controller-threads=2",
        ],
        env={
            "SPARK_HOME": str(home),
            "KUBECONFIG": str(cluster.admin_kubeconfig(s)),  # spark-submit's Kubernetes client reads it
            "KUBERNETES_SERVICE_HOST": s.host,
            "KUBERNETES_SERVICE_PORT": str(s.ports.kube_apiserver),
            # spark-submit's own JVM: small, and its scratch files in the stack's folder
            "SPARK_SUBMIT_OPTS": f"-Xmx512m -Djava.io.tmpdir={data_dir(s, 'spark-operator')}",
        },
        url=f"http://{s.host}:{s.ports.spark_operator_health}",
        ready=lambda: _ok(f"http://{s.host}:{s.ports.spark_operator_health}/readyz"),
        prepare=lambda: data_dir(s, "spark-operator").mkdir(parents=True, exist_ok=True),
        after=("spark-operator-webhook",),
    )


def components(s: StackSettings, namespaces: Sequence[str]) -> list[Component]:
    """The webhook, then the controller (a driver pod created before the webhook is up would miss it)."""
    if not namespaces:
        raise ValueError("the local spark-operator needs the namespaces it may act in")
    return [webhook(s, namespaces), controller(s, namespaces)]


Hook = tuple[str, str, str, str, bool]  # path, API group, version, resource, whether it is the pod webhook


def _webhook_entry(s: StackSettings, namespaces: Sequence[str], hook: Hook) -> dict[str, Any]:
    path, group, version, resource, pods = hook
    entry: dict[str, Any] = {
        "name": f"{path}.sparkoperator.k8s.io",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": f"https://localhost:{s.ports.spark_operator_webhook}/{path}"},
        "sideEffects": "None",
        "failurePolicy": "Fail",  # a Spark pod without its security context and volumes must not start
        "timeoutSeconds": 10,
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(namespaces)}]
        },
        "rules": [
            {
                "apiGroups": [group],
                "apiVersions": [version],
                "resources": [resource],
                "operations": ["CREATE"] if pods else ["CREATE", "UPDATE"],
            }
        ],
    }
    if pods:
        entry["objectSelector"] = {"matchLabels": {LAUNCHED_BY: "true"}}
    return entry


def webhook_configurations(s: StackSettings, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """The mutating and validating webhook configurations (no caBundle: the webhook writes its CA)."""

    def config(kind: str, hooks: tuple[Hook, ...]) -> dict[str, Any]:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": WEBHOOK_NAME, "labels": {"app.kubernetes.io/name": "spark-operator"}},
            "webhooks": [_webhook_entry(s, namespaces, h) for h in hooks],
        }

    return [config("MutatingWebhookConfiguration", MUTATING), config("ValidatingWebhookConfiguration", VALIDATING)]


def register_webhooks(s: StackSettings, namespaces: Sequence[str]) -> None:
    for obj in webhook_configurations(s, namespaces):
        cluster.kubectl(s, "apply", "-f", "-", stdin=json.dumps(obj))


def _ca_injected(s: StackSettings) -> bool:
    """Whether the webhook has written its CA into both configurations (the API server then trusts it)."""
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        out = cluster.kubectl(s, "get", kind, WEBHOOK_NAME, "-o", "json", "--ignore-not-found", check=False)
        hooks = json.loads(out).get("webhooks", []) if out.strip() else []
        if not hooks or not all(h.get("clientConfig", {}).get("caBundle") for h in hooks):
            return False
    return True


def unregister_webhooks(s: StackSettings) -> None:
    """Remove the webhook configurations (with the webhook stopped, a failing webhook would block Spark pods)."""
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        cluster.kubectl(s, "delete", kind, WEBHOOK_NAME, "--ignore-not-found", check=False)
