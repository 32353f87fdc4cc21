# Entry points for the multisite operator. `make test` is the suite the README and .ci/run use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLUSTER := $(PY) tests/controlplane/cluster.py

.PHONY: venv cluster-build cluster-up cluster-down cluster-status test test-unit demo demo-down run bench

# The venv is (re)installed only when pyproject.toml changes.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok from Go modules into
# .cache/controlplane/<release>/bin (nothing to do when cached).
cluster-build:
	tests/controlplane/build.sh

# Starts the control plane in the background (or reuses a running one); kubeconfig at .cache/controlplane/kubeconfig.
cluster-up: venv cluster-build
	$(CLUSTER) up

cluster-down: venv
	$(CLUSTER) down

cluster-status: venv
	$(CLUSTER) status

# The whole suite; on a fresh machine it first installs the venv and builds the control plane (both cached).
test: venv cluster-build
	$(VENV)/bin/pytest tests

test-unit: venv
	$(VENV)/bin/pytest tests/unit

# Benchmarks (issue 7) on a private control plane: prints the table, writes bench/results.json and bench/RESULTS.md.
# Waits up to 2 minutes for a quiet machine first; BENCH_ARGS passes options (see bench/run.py --help).
BENCH_ARGS ?=
bench: venv cluster-build
	$(PY) bench/run.py --wait-quiet 120 $(BENCH_ARGS)

# The example on the local control plane with the operator running from this checkout (log: .cache/demo/); it stays
# up until `make demo-down`. See scripts/demo.sh.
demo: venv cluster-build
	scripts/demo.sh up

demo-down:
	scripts/demo.sh down

# The operator in the foreground against $$KUBECONFIG (default: the local control plane), every namespace, as the
# image runs it. Narrow it with e.g. `make run RUN_ARGS="--namespace dev"`.
KUBECONFIG ?= $(CURDIR)/.cache/controlplane/kubeconfig
RUN_ARGS ?=
run: venv
	KUBECONFIG=$(KUBECONFIG) $(VENV)/bin/multisite-operator run --liveness http://127.0.0.1:8080/healthz \
		--metrics-port 9090 $(RUN_ARGS)

# --- image (issue 18) ---------------------------------------------------------------------------------------------
# `make image`: localhost/multisite-operator:dev built with podman from this checkout (installs podman from Debian's
# packages; on a local Debian-made base where the official one cannot be pulled; nothing to do when its inputs are
# unchanged). A prerequisite of `test`, because tests/e2e/test_image.py runs it and building needs the network.
.PHONY: image
image:
	tests/image/build.sh

test: image
# --- end image -----------------------------------------------------------------------------------------------------
