# clinops: `make help` lists every target.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

UV_VERSION := 0.13.9
APT_PACKAGES := redis-server prometheus postgresql maven openjdk-17-jre-headless git ca-certificates \
	containerd runc containernetworking-plugins busybox-static mmdebstrap
GO_MIN := 1.24
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
export UV_FROZEN := 1
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --no-sync
DEVSTACK := $(RUN) python -m clinops_devstack
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Install everything on a fresh Debian 12 machine (idempotent; a second run takes seconds)
	@echo "==> [1/5] system packages: $(APT_PACKAGES)"
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "    installing:" $$missing; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "    all present"; fi
	@v=$$(go env GOVERSION 2>/dev/null | sed 's/^go//'); \
	if [ -z "$$v" ] || [ "$$(printf '%s\n' "$(GO_MIN)" "$$v" | sort -V | head -1)" != "$(GO_MIN)" ]; then \
		echo "Go $(GO_MIN) or newer is required on PATH (found: $${v:-none})"; exit 1; fi
	@echo "==> [2/5] uv $(UV_VERSION)"
	@if ! $(UV) --version 2>/dev/null | grep -q "$(UV_VERSION)"; then \
		python3.11 -m pip install --quiet --user --disable-pip-version-check "uv==$(UV_VERSION)"; fi
	@$(UV) --version
	@echo "==> [3/5] Python environment from uv.lock (.venv)"
	@$(UV) sync --frozen --all-packages
	@echo "==> [4/5] pinned infrastructure (Kafka, MinIO, FerretDB, Spark s3a and batch-source connector jars, Feast reference env, the Kubernetes control plane, helm, kubeconform)"
	@$(DEVSTACK) tools
	@echo "==> [5/5] the clinops images (make image: system, Python and code layers, cached by content)"
	@$(DEVSTACK) image $(IMAGES)
	@echo "==> setup complete"

.PHONY: up
up: ## Start the local stack on loopback (Kafka, MinIO, Redis, PostgreSQL, MLflow, Prometheus, FerretDB)
	@$(DEVSTACK) up

.PHONY: down
down: ## Stop exactly what `make up` started
	@$(DEVSTACK) down

.PHONY: status
status: ## One line per component: healthy or not, and its URL
	@$(DEVSTACK) status

.PHONY: logs
logs: ## Show the end of each component's log (C=kafka for one)
	@$(DEVSTACK) logs $(C)

.PHONY: env
env: ## Print `export CLINOPS_*=...` for the local stack (eval "$$(make env)": the admin; C=ingest|processor|featurizer|trainer|scorer|monitor|operator|lifecycle: its own lake user, and database role)
	@$(DEVSTACK) env $(C)

.PHONY: demo
demo: ## Set up if needed, then the lifecycle of one FeaturePipeline (demo-lifecycle), then the stroke pipeline's stage from its real sources (demo-stroke)
	@$(MAKE) demo-lifecycle
	@$(MAKE) demo-stroke

.PHONY: demo-lifecycle
demo-lifecycle: ## The lifecycle of one FeaturePipeline: stack, control plane, operator with the local executor, v1, predictions, the monitor, retraining, v2 (DEMO_ARGS=--help)
	@$(MAKE) setup
	@$(DEVSTACK) up
	@$(DEVSTACK) cluster-up --no-real-node >/dev/null  # the local executor runs the stages: no pod needs the real node
	@$(RUN) python -m clinops_devstack.demo $(DEMO_ARGS)

.PHONY: demo-pipeline
demo-pipeline: ## The pipeline without the operator: smoke path, generated data to Kafka, bronze, silver, features, Redis
	@$(MAKE) setup
	@$(DEVSTACK) up
	@echo "==> smoke path through every component"
	@$(DEVSTACK) smoke
	@$(MAKE) demo-stream
	@DEMO_AS_OF="$$(date -u +%Y-%m-%dT%H:%M:%S)" $(MAKE) demo-features

# ---- streaming path: synthetic data -> Kafka -> bronze -> silver ----
STACK_ENV = eval "$$($(DEVSTACK) env)" &&
DEMO_DATA := .local/demo/synthetic
# Every stage command takes its contract's --pipeline and --run-id; results land in runs/demo/<run id>/.
ifndef DEMO_RUN_ID
DEMO_RUN_ID := demo-$(shell date -u +%Y%m%dT%H%M%S)
endif
DEMO_RUN = --pipeline demo --run-id $(DEMO_RUN_ID)

.PHONY: demo-stream
demo-stream: ## Generate a small cohort, produce it to Kafka, ingest to bronze, process to silver, count each layer
	@echo "==> synthetic data: 24 patients over the last 24 hours (seed 1), faults injected; batch tables, oracle and ledger to the lake"
	@$(STACK_ENV) $(RUN) python -m clinops_common.synthetic generate --patients 24 --days 1 --seed 1 --start "$$(date -u -d '-1 day' +%Y-%m-%dT%H:00:00)" --out $(DEMO_DATA) --upload
	@echo "==> produce to Kafka"
	@$(STACK_ENV) $(RUN) python -m clinops_common.synthetic produce --from $(DEMO_DATA)
	@echo "==> ingest: Kafka -> bronze and dead letters, until idle"
	@$(STACK_ENV) $(RUN) python -m clinops_ingest ingest $(DEMO_RUN) --idle-exit-s 5
	@echo "==> process: bronze -> silver and quarantine (PySpark, local[2])"
	@mkdir -p .local/logs && $(STACK_ENV) $(RUN) python -m clinops_processor process $(DEMO_RUN) 2> .local/logs/demo-processor.log \
		|| { tail -n 30 .local/logs/demo-processor.log; exit 1; }
	@echo "==> what each layer holds (expected counts: $(DEMO_DATA)/ledger.json)"
	@$(STACK_ENV) $(RUN) python -m clinops_processor summary

.PHONY: bench-ingest
bench-ingest: ## Benchmark: 1M vitals, our consumer vs Kafka's ConsumerPerformance, then the processor (name=value)
	@$(RUN) python -m clinops_devstack.bench.ingest

.PHONY: bench-scorer
bench-scorer: ## Benchmark: the scorer at 200 req/s open loop for 60 s (10,000 patients, audit on) beside a BentoML hello endpoint, then the highest rate with p99 <= 10 ms (name=value)
	@$(RUN) python -m clinops_devstack.bench.scorer $(BENCH_SCORER_ARGS)

.PHONY: profile-scorer
profile-scorer: ## CPU time per request of the scorer's request path, part by part, in process (Redis + PostgreSQL; PROFILE_SCORER_ARGS="--cprofile 30")
	@$(RUN) python -m clinops_devstack.bench.scorer_profile $(PROFILE_SCORER_ARGS)

.PHONY: profile-scorer-tail
profile-scorer-tail: ## The scorer's tail latency, variant against variant, each round paired with the hello reference (PROFILE_TAIL_ARGS="--variant si05=CLINOPS_SCORER_GIL_SWITCH_INTERVAL_MS=0.5")
	@$(RUN) python -m clinops_devstack.bench.scorer_tail $(PROFILE_TAIL_ARGS)

.PHONY: profile-scorer-http
profile-scorer-http: ## CPU time per request of the scorer and the BentoML hello reference over HTTP and through their ASGI stacks (PROFILE_HTTP_ARGS="--cprofile 25")
	@$(RUN) python -m clinops_devstack.bench.scorer_http_profile $(PROFILE_HTTP_ARGS)

.PHONY: test
test: ## Run every test (unit and integration; starts its own servers on free ports)
	@$(RUN) pytest $(PYTEST_ARGS)

.PHONY: test-loop
test-loop: ## Only the loop tests (in make test too): one apply -> v1 -> retraining -> v2 through three SIGKILLs, and a failing stage (CLINOPS_LOOP_WAIT_S=2400 on a loaded machine)
	@$(RUN) pytest tests/integration/kube/test_operator_local_loop.py $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: ## Run the fast unit tests only (no servers)
	@$(RUN) pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: ## Run the integration tests only (real servers)
	@$(RUN) pytest -m integration $(PYTEST_ARGS)

.PHONY: lint
lint: ## ruff (lint and format check) and mypy
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy

.PHONY: format
format: ## Format and auto-fix with ruff
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

# ---- feature store ------------------------------------------------------------------
FEATURIZER := $(RUN) python -m clinops_featurizer
BENCH_FEATURES_ARGS ?=

.PHONY: demo-features
demo-features: ## Featurize silver, materialize to Redis, print one online vector and a training set's shape
	@[ -x .venv/bin/python ] || $(MAKE) setup
	@$(DEVSTACK) up
	@eval "$$($(DEVSTACK) env)"; \
	echo "==> sample silver and batch tables where none exist yet"; $(FEATURIZER) sample-data --if-missing; \
	echo "==> featurize silver -> offline store"; $(FEATURIZER) featurize $(DEMO_RUN); \
	echo "==> stroke cohort -> stroke_risk"; $(FEATURIZER) stroke $(DEMO_RUN); \
	echo "==> materialize -> Redis"; $(FEATURIZER) materialize $(DEMO_RUN) --end "$${DEMO_AS_OF:-data}"; \
	echo "==> one online vector"; $(FEATURIZER) online --at materialized; \
	echo "==> point-in-time training set"; $(FEATURIZER) training-set

DEMO_STROKE_ARGS ?=

.PHONY: demo-stroke
demo-stroke: ## The stroke pipeline's stroke stage from its real sources: generator -> FerretDB, PostgreSQL, MinIO -> the operator's rendered command -> views, counts checked (DEMO_STROKE_ARGS=--help)
	@[ -x .venv/bin/python ] || $(MAKE) setup
	@$(DEVSTACK) up
	@$(RUN) python -m clinops_devstack.stroke_demo $(DEMO_STROKE_ARGS)

.PHONY: features-catalogue
features-catalogue: ## Print the feature catalogue (entity, views, services; FEATURES=1 lists every feature)
	@$(FEATURIZER) catalogue $(if $(FEATURES),--features,)

.PHONY: test-scenarios
test-scenarios: ## The monitor's scenario worlds through the featurizer, trainer and batch scorer (slow: not in make test)
	@CLINOPS_SCENARIOS_REAL_PATH=1 MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(RUN) pytest tests/integration/monitor/test_scenarios_real_path.py -x -s

.PHONY: bench-monitor
bench-monitor: ## Monitor benchmark: one evaluation over 1M labelled predictions, then the four scenario worlds (name=value)
	@$(RUN) python -m clinops_devstack.bench.monitor

.PHONY: bench-features
bench-features: ## Feature-store benchmark: materialization, online vs bare Redis reads, our PIT join vs Feast's
	@$(RUN) python -m clinops_devstack.bench.features $(BENCH_FEATURES_ARGS)

.PHONY: bench-stream
bench-stream: ## Streaming featurizer benchmark: event -> online store freshness (p50/p99 s) at 1,000 events/s (name=value)
	@$(RUN) python -m clinops_devstack.bench.stream $(BENCH_STREAM_ARGS)

.PHONY: bench-stroke
bench-stroke: ## Stroke benchmark: 100k patients from FerretDB, PostgreSQL (JDBC) and S3 Parquet through the stroke job, beside a plain Parquet read (name=value)
	@$(RUN) python -m clinops_devstack.bench.stroke $(BENCH_STROKE_ARGS)

.PHONY: bench-train
bench-train: ## Trainer benchmark: >=100k labelled rows, training set build, both families vs the oracle, s per 1M rows
	@$(RUN) python -m clinops_devstack.bench.train $(BENCH_TRAIN_ARGS)

# --- Kubernetes: local control plane, operator, chart ---------------------------------------------
KUBECONFIG_LOCAL := $(CURDIR)/.local/kubeconfig

.PHONY: cluster-up
cluster-up: ## Start a local Kubernetes control plane (etcd, apiserver, controller manager, scheduler, kwok nodes) and one real kubelet node (containerd, runc)
	@$(DEVSTACK) cluster-up

.PHONY: cluster-down
cluster-down: ## Stop the control plane and the real node, leaving no container, mount or cgroup (`make clean` deletes its data)
	@$(DEVSTACK) cluster-down

.PHONY: cluster-status
cluster-status: ## One line per control-plane process
	@$(DEVSTACK) cluster-status

.PHONY: operator
operator: ## Run the FeaturePipeline operator against .local/kubeconfig (make cluster-up first; results from make up's MinIO)
	@[ -f $(KUBECONFIG_LOCAL) ] || { echo "no $(KUBECONFIG_LOCAL): run make cluster-up first"; exit 1; }
	@$(STACK_ENV) KUBECONFIG=$(KUBECONFIG_LOCAL) $(RUN) python -m clinops_operator run --standalone --plain-logs

.PHONY: chart-test
chart-test: ## helm lint, helm template | kubeconform (strict, offline), helm install and the RBAC matrix
	@$(RUN) pytest tests/integration/kube/test_chart.py $(PYTEST_ARGS)

IMAGES ?= clinops clinops-trainer

.PHONY: image
image: ## Build the clinops images without Docker (cached layers) and import them into the real node when it runs (IMAGES=clinops for one)
	@$(DEVSTACK) image $(IMAGES)

.PHONY: clean
clean: down cluster-down ## Stop the stack and the control plane and delete their data (.local/)
	rm -rf .local

.PHONY: bench-featurize
bench-featurize: ## Featurizer benchmark: the featurize stage on 60x3 and 240x6 (patients x days) of silver beside a read-and-count Spark job, CPU s of each process tree (name=value)
	@$(RUN) python -m clinops_devstack.bench.featurize $(BENCH_FEATURIZE_ARGS)
