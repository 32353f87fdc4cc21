# Entry points for the multisite operator. `make test` is the suite the README and .ci/run use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLUSTER := $(PY) tests/controlplane/cluster.py
# Real serving (issue 12): what `make test` builds first, and the private network namespace pytest runs in.
REAL_SERVING := traefik-build gateway-crds runtime-venv
IN_NETNS := MULTISITE_REAL_SERVING=1 tests/runtime/in-netns.sh

.PHONY: venv cluster-build cluster-up cluster-down cluster-status test test-unit demo demo-down run bench bench-serving
.PHONY: traefik-build gateway-crds runtime-venv test-serving routes

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

# The whole suite; on a fresh machine it first installs the venv and builds the control plane, Traefik and the
# Divio runtime venv (all cached). Everything that needs the network happens in those prerequisites: pytest then
# runs inside a private network namespace where kwok's pod range is local (see tests/runtime/in-netns.sh).
test: venv cluster-build $(REAL_SERVING)
	$(IN_NETNS) $(VENV)/bin/pytest tests

# ---- real serving (issue 12): Traefik + the real Divio runtime behind the test image's pods ----------------------
# Traefik from Go modules into .cache/traefik/<version>/bin (nothing to do when cached).
traefik-build:
	tests/ingress/build.sh

# The Gateway API's standard CRDs (sigs.k8s.io/gateway-api module, Go module proxy) into .cache/gateway-api/<version>
# (nothing to do when cached); the gateway serving tests install them on their control plane.
gateway-crds:
	tests/ingress/gateway-crds.sh

# The Divio Django runtime's venv into .cache/runtime/<hash of its pins> (nothing to do when cached); needs
# ../shared/vendor/divio beside the clone (MULTISITE_SHARED=/path/to/shared overrides).
runtime-venv:
	tests/runtime/build-venv.sh

# The serving tests alone (real HTTP through Traefik to the real runtime).
test-serving: venv cluster-build $(REAL_SERVING)
	$(IN_NETNS) $(VENV)/bin/pytest tests/serving

# Apply MANIFEST on a private control plane with the real runtime and print one JSON line per host it serves.
# HOSTS="h1 h2" asks more hosts. See scripts/routes.py --help.
MANIFEST ?= examples/example-shared.yaml
HOSTS ?=
routes: venv cluster-build $(REAL_SERVING)
	$(PY) scripts/routes.py $(MANIFEST) $(foreach h,$(HOSTS),--host $(h))
# -------------------------------------------------------------------------------------------------------------------

test-unit: venv
	$(VENV)/bin/pytest tests/unit

# Benchmarks (issue 7) on a private control plane: prints the table, writes bench/results.json and bench/RESULTS.md.
# Waits up to 2 minutes for a quiet machine first; BENCH_ARGS passes options (see bench/run.py --help).
BENCH_ARGS ?=
bench: venv cluster-build
	$(PY) bench/run.py --wait-quiet 120 $(BENCH_ARGS)

# The serving benchmark (issue 17): a hostname added to a gateway project, timed to its site's answer, against the
# same change written by hand; real Traefik and Django, inside the private network namespace. Writes
# bench/serving-results.json (BENCH_SERVING_REPEATS, default 7).
bench-serving: venv cluster-build $(REAL_SERVING)
	$(IN_NETNS) $(VENV)/bin/pytest -q -s tests/serving/bench_alias.py

# The example on the local control plane with the operator running from this checkout (log: .cache/demo/); it stays
# up until `make demo-down`. See scripts/demo.sh.
demo: venv cluster-build $(REAL_SERVING)
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
