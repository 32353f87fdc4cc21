#!/usr/bin/env bash
# `make demo` / `make demo-down`: the example project on the local control plane, with the operator running
# from this checkout, exactly as `multisite-operator run` runs in the image (only scoped to the demo namespace, so
# it never touches the namespaces the test suite creates on the same control plane).
#
#   scripts/demo.sh up     start (or reuse) the control plane, install the CRD, run the operator, apply the example
#   scripts/demo.sh down   stop the operator and remove the demo namespace (and the control plane if the demo
#                          started it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

NS="${DEMO_NAMESPACE:-multisite-demo}"
STATE="$root/.cache/demo"
PY="$root/.venv/bin/python"
HEALTH_PORT="${DEMO_HEALTH_PORT:-18080}"
METRICS_PORT="${DEMO_METRICS_PORT:-19090}"
release="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' tests/controlplane/go.mod)"
KUBECTL="$root/.cache/controlplane/$release/bin/kubectl"
# CONTROLPLANE_STATE_DIR: run the demo on a control plane of its own (default: the shared one of `make cluster-up`).
cluster_args=()
if [ -n "${CONTROLPLANE_STATE_DIR:-}" ]; then
  cluster_args=(--state-dir "$CONTROLPLANE_STATE_DIR")
  export KUBECONFIG="$CONTROLPLANE_STATE_DIR/kubeconfig"
else
  export KUBECONFIG="$root/.cache/controlplane/kubeconfig"
fi
k() { "$KUBECTL" "$@"; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

operator_pid() {  # the pid of the operator this script started, if it still runs
  local pid
  pid="$(cat "$STATE/operator.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "multisite_operator.cli run" \
    && echo "$pid"
}

stop_operator() {
  local pid
  if pid="$(operator_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "operator (pid $pid) stopped"
  fi
  rm -f "$STATE/operator.pid"
}

up() {
  local start=$SECONDS
  mkdir -p "$STATE"
  say "Control plane (built from Go modules on first use, then reused)"
  if "$PY" tests/controlplane/cluster.py status "${cluster_args[@]}" >/dev/null 2>&1; then
    echo "reusing the running control plane"
  else
    "$PY" tests/controlplane/cluster.py up "${cluster_args[@]}"
    touch "$STATE/started-controlplane"
  fi

  say "CRD: kubectl apply --server-side -f crds/multisiteprojects.yaml"
  k apply --server-side --force-conflicts -f crds/multisiteprojects.yaml
  k wait --for=condition=Established --timeout=60s crd/multisiteprojects.multisite.dev

  say "Operator: multisite-operator run --namespace $NS (log: .cache/demo/operator.log)"
  stop_operator  # a previous demo's operator runs older code
  setsid "$PY" -m multisite_operator.cli run --namespace "$NS" \
    --liveness "http://127.0.0.1:$HEALTH_PORT/healthz" --metrics-port "$METRICS_PORT" \
    >>"$STATE/operator.log" 2>&1 < /dev/null &
  echo $! > "$STATE/operator.pid"
  "$PY" - "$HEALTH_PORT" <<'PYEOF'
import sys, time, urllib.request
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the operator did not answer its liveness endpoint in 60 s; see .cache/demo/operator.log")
        time.sleep(0.2)
PYEOF
  echo "operator running (pid $(cat "$STATE/operator.pid")), liveness http://127.0.0.1:$HEALTH_PORT/healthz"

  say "Example: kubectl apply -n $NS -f examples/example-shared.yaml"
  k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
  k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  k apply -n "$NS" -f examples/example-shared.yaml

  say "kubectl wait --for=condition=Ready msp/example, then Populated"
  k wait -n "$NS" --for=condition=Ready --timeout=180s msp/example
  k wait -n "$NS" --for=condition=Populated --timeout=60s msp/example

  say "kubectl get msp"
  k get -n "$NS" msp
  say "kubectl get msp,deploy,job,ingress"
  k get -n "$NS" msp,deploy,job,ingress

  say "Served: each host of the example through Traefik to Divio's real Django runtime (scripts/routes.py)"
  echo "(measured on a private control plane in a private network namespace, where the pods run for real)"
  if ! "$PY" scripts/routes.py --table examples/example-shared.yaml; then
    echo "could not measure the served table (see the messages above); the demo itself is running"
  fi

  cat <<MSG

The demo is running ($((SECONDS - start)) s). Look around:
  export KUBECONFIG=$KUBECONFIG
  alias kubectl=$KUBECTL
  kubectl -n $NS get msp example -o yaml                  # status: conditions, sites, knownSites
  kubectl -n $NS events --for msp/example                 # what the operator decided, and why
  kubectl -n $NS get ingress example -o wide              # every routed domain
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep ^multisite_
  tail -f .cache/demo/operator.log
  .venv/bin/multisite-operator site-env examples/example-shared.yaml gh    # force one site locally
Stop it with:  make demo-down
MSG
}

down() {
  stop_operator
  if "$PY" tests/controlplane/cluster.py status "${cluster_args[@]}" >/dev/null 2>&1; then
    k delete namespace "$NS" --ignore-not-found --wait=false
    if [ -f "$STATE/started-controlplane" ]; then
      "$PY" tests/controlplane/cluster.py down "${cluster_args[@]}"
    else
      echo "the control plane was running before the demo and is left running (make cluster-down stops it)"
    fi
  fi
  rm -f "$STATE/started-controlplane"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
