#!/usr/bin/env bash
# The real parts the deploy tests use: a container engine (Debian's docker.io), an OCI registry
# (Debian's docker-registry, distribution v2) on 127.0.0.1, a small Python base image built
# from Debian packages with mmdebstrap (no public container registry is needed), and an MLflow
# tracking server (PyPI's mlflow, in its own virtual environment under the state directory).
#
# Idempotent: what runs keeps running, what exists is reused. Writes the variables the tests read
# to $MLOPS_SERVICES_DIR/env (source it):
#   DOCKER_HOST, MLOPS_TEST_REGISTRY=127.0.0.1:PORT, MLOPS_TEST_REGISTRY_DATA (its storage),
#   MLOPS_TEST_BASE_IMAGE,
#   MLOPS_TEST_MLFLOW=http://127.0.0.1:PORT
# Stop everything with: bash scripts/services.sh stop
set -euo pipefail

STATE=${MLOPS_SERVICES_DIR:-$HOME/.cache/pytest-mlops/services}
BASE_IMAGE=${MLOPS_BASE_IMAGE_TAG:-pytest-mlops/python-base:bookworm}
SOCKET=${MLOPS_DOCKER_SOCKET:-/var/run/docker.sock}
mkdir -p "$STATE"

log() { echo "services: $*" >&2; }

stop_pid() {  # FILE [group]: the PID in FILE, or with "group" its whole process group (setsid)
  local file=$1 target
  if [[ -f $file ]]; then
    target=$(cat "$file")
    if kill -0 "$target" 2>/dev/null; then
      [[ ${2:-} == group ]] && target="-$target"
      log "stopping ${target} ($file)"
      kill -- "$target" || true
    fi
    rm -f "$file"
  fi
}

if [[ ${1:-} == stop ]]; then
  stop_pid "$STATE/mlflow.pid" group
  stop_pid "$STATE/registry.pid"
  stop_pid "$STATE/dockerd.pid"
  exit 0
fi

# --- packages ------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[[ -x /usr/bin/docker-registry ]] || need+=(docker-registry)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing ${need[*]} and not root: install them with apt-get" >&2
    exit 1
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  flock /tmp/apt.lock apt-get update -qq
  flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- dockerd -------------------------------------------------------------------------------
docker_up() { DOCKER_HOST="unix://$SOCKET" /usr/bin/docker version >/dev/null 2>&1; }
if ! docker_up; then
  log "starting dockerd"
  mkdir -p "$STATE/docker-data"
  driver_args=()
  [[ -n ${MLOPS_DOCKER_STORAGE_DRIVER:-} ]] && driver_args=(--storage-driver "$MLOPS_DOCKER_STORAGE_DRIVER")
  nohup dockerd --host "unix://$SOCKET" --pidfile "$STATE/dockerd.pid" \
    --data-root "$STATE/docker-data" "${driver_args[@]}" >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    docker_up && break
    sleep 0.5
  done
  if ! docker_up; then
    log "dockerd did not start; its log ($STATE/dockerd.log) ends with:"
    tail -n 20 "$STATE/dockerd.log" >&2
    exit 1
  fi
fi

# --- HTTP services on 127.0.0.1: NAME.port and NAME.pid in $STATE ----------------------------
service_up() {  # NAME PATH: the service answers 200 on its recorded port
  [[ -f $STATE/$1.port ]] \
    && python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$(cat "$STATE/$1.port")$2" >/dev/null 2>&1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_up() {  # NAME PATH TRIES: poll every 0.5 s; on failure show the end of NAME.log and exit
  for _ in $(seq 1 "$3"); do
    service_up "$1" "$2" && return 0
    sleep 0.5
  done
  log "$1 did not start; its log ($STATE/$1.log) ends with:"
  tail -n 20 "$STATE/$1.log" >&2
  exit 1
}

# --- OCI registry --------------------------------------------------------------------------
if ! service_up registry /v2/; then
  stop_pid "$STATE/registry.pid"
  port=$(free_port)
  mkdir -p "$STATE/registry-data"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  log "starting docker-registry on 127.0.0.1:$port"
  nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  echo "$port" >"$STATE/registry.port"
  wait_up registry /v2/ 60
fi

# --- base image ----------------------------------------------------------------------------
export DOCKER_HOST="unix://$SOCKET"
if ! /usr/bin/docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "building the base image $BASE_IMAGE with mmdebstrap (about 100 s, once)"
  mmdebstrap --quiet --variant=essential \
    --include=python3,python3-venv,ca-certificates,libstdc++6 bookworm - \
    | /usr/bin/docker import - "$BASE_IMAGE" >/dev/null
fi

# --- MLflow tracking server ----------------------------------------------------------------
MLFLOW=${MLOPS_MLFLOW_VERSION:-3.17.2}
mlflow_venv="$STATE/mlflow-venv-$MLFLOW"
if [[ ! -f $mlflow_venv/.ready ]]; then
  log "installing mlflow==$MLFLOW in $mlflow_venv (about a minute, once)"
  rm -rf "$mlflow_venv"
  python3 -m venv "$mlflow_venv"
  "$mlflow_venv/bin/pip" install -q --disable-pip-version-check "mlflow==$MLFLOW" >&2
  touch "$mlflow_venv/.ready"
fi
if ! service_up mlflow /health; then
  stop_pid "$STATE/mlflow.pid" group
  port=$(free_port)
  mkdir -p "$STATE/mlflow"
  log "starting mlflow server on 127.0.0.1:$port"
  setsid nohup "$mlflow_venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$STATE/mlflow/mlflow.db" \
    --artifacts-destination "$STATE/mlflow/artifacts" >"$STATE/mlflow.log" 2>&1 &
  echo $! >"$STATE/mlflow.pid"
  echo "$port" >"$STATE/mlflow.port"
  wait_up mlflow /health 180
fi

cat >"$STATE/env" <<EOF
export DOCKER_HOST=unix://$SOCKET
export MLOPS_TEST_REGISTRY=127.0.0.1:$(cat "$STATE/registry.port")
export MLOPS_TEST_REGISTRY_DATA=$STATE/registry-data
export MLOPS_TEST_BASE_IMAGE=$BASE_IMAGE
export MLOPS_TEST_MLFLOW=http://127.0.0.1:$(cat "$STATE/mlflow.port")
EOF
log "ready: $(tr '\n' ' ' <"$STATE/env")"
