#!/bin/bash
# The one entry point of the clinops images: `clinops <component or stage> [arguments...]`.
# Shared by `make image` (devstack/src/clinops_devstack/image.py) and image/Containerfile.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: clinops <command> [arguments...]

components:
  operator ...        the FeaturePipeline operator (python -m clinops_operator: run, render)
  scorer ...          the scorer (serve, batch)
  monitor ...         the monitor (evaluate, serve)
  ingester ... / processor ... / featurizer ... / trainer ...   a service's full command line
stages (the operator's children; options as in `clinops <stage> --help`):
  ingest | process | featurize | materialize | stroke | train
Spark on Kubernetes (what spark-submit gives a driver or executor container):
  driver ... | executor ...
other:
  python ...          the image's Python
  help                this text
USAGE
}

spark_java_opts() {
  # Spark passes executor JVM options as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... (see Spark's entrypoint.sh).
  env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//'
}

cmd="${1:-help}"
[ $# -gt 0 ] && shift
case "$cmd" in
  operator)   exec python -m clinops_operator "$@" ;;
  scorer)     exec python -m clinops_scorer "$@" ;;
  monitor)    exec python -m clinops_monitor "$@" ;;
  ingester)   exec python -m clinops_ingest "$@" ;;
  processor)  exec python -m clinops_processor "$@" ;;
  featurizer) exec python -m clinops_featurizer "$@" ;;
  trainer)    exec python -m clinops_trainer "$@" ;;
  ingest)     exec python -m clinops_ingest ingest "$@" ;;
  process)    exec python -m clinops_processor process "$@" ;;
  featurize|materialize|stroke) exec python -m clinops_featurizer "$cmd" "$@" ;;
  train)      exec python -m clinops_trainer train "$@" ;;  # pytorch-mlp needs the clinops-trainer image (torch)
  driver)
    # As Spark's own entrypoint, plus spark.driver.host: executors reach the driver at its pod IP, not
    # through the driver Service's DNS name (a cluster without DNS, such as the local one, has none).
    : "${SPARK_DRIVER_BIND_ADDRESS:?spark-submit sets SPARK_DRIVER_BIND_ADDRESS in a driver pod}"
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.driver.host=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@" ;;
  executor)
    mapfile -t java_opts < <(spark_java_opts)
    exec "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      "-Xms${SPARK_EXECUTOR_MEMORY:?}" "-Xmx${SPARK_EXECUTOR_MEMORY}" \
      -cp "${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL:?}" --executor-id "${SPARK_EXECUTOR_ID:?}" \
      --cores "${SPARK_EXECUTOR_CORES:?}" --app-id "${SPARK_APPLICATION_ID:?}" \
      --hostname "${SPARK_EXECUTOR_POD_IP:?}" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}" "$@" ;;
  python)     exec python "$@" ;;
  help|-h|--help) usage ;;
  *) echo "clinops: unknown command '$cmd'" >&2; usage >&2; exit 64 ;;
esac
