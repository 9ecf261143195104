#!/usr/bin/env bash
# The real parts the deploy tests use: a container engine (Debian's docker.io), an OCI registry
# (Debian's docker-registry, distribution v2) on 127.0.0.1, a small Python base image built
# from Debian packages with mmdebstrap (no public container registry is needed), and an MLflow
# tracking server (PyPI's mlflow, in its own virtual environment under the state directory).
# Then the same as teams have them, behind TLS (a test CA made with trustme) and authentication:
# a registry with htpasswd (bcrypt) authentication, one with token authentication (distribution's
# `auth: token`, tokens from scripts/registry_token_issuer.py signed with the test key), and
# `mlflow server --app-name basic-auth` (MLflow's own authentication).
#
# Idempotent: what runs keeps running, what exists is reused. Writes the variables the tests read
# to $MLOPS_SERVICES_DIR/env (source it):
#   DOCKER_HOST, MLOPS_TEST_REGISTRY=127.0.0.1:PORT, MLOPS_TEST_REGISTRY_DATA (its storage),
#   MLOPS_TEST_BASE_IMAGE,
#   MLOPS_TEST_MLFLOW=http://127.0.0.1:PORT
#   MLOPS_TEST_CA (the test CA, PEM), MLOPS_TEST_TLS_CERT/_KEY (127.0.0.1's certificate),
#   MLOPS_TEST_HTPASSWD, MLOPS_TEST_REGISTRY_USER/_PASSWORD (may push),
#   MLOPS_TEST_REGISTRY_READER/_READER_PASSWORD (may pull only, on the token registry),
#   MLOPS_TEST_REGISTRY_TLS=127.0.0.1:PORT (TLS + htpasswd), MLOPS_TEST_REGISTRY_TLS_DATA,
#   MLOPS_TEST_REGISTRY_TOKEN=127.0.0.1:PORT (TLS + token auth), MLOPS_TEST_TOKEN_ISSUER (its URL),
#   MLOPS_TEST_MLFLOW_TLS=https://127.0.0.1:PORT, MLOPS_TEST_MLFLOW_USER/_PASSWORD (its admin)
# Stop everything with: bash scripts/services.sh stop
set -euo pipefail

STATE=${MLOPS_SERVICES_DIR:-$HOME/.cache/pytest-mlops/services}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
BASE_IMAGE=${MLOPS_BASE_IMAGE_TAG:-pytest-mlops/python-base:bookworm}
SOCKET=${MLOPS_DOCKER_SOCKET:-/var/run/docker.sock}
PKI=$STATE/pki
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
  stop_pid "$STATE/mlflow-auth.pid" group
  stop_pid "$STATE/mlflow.pid" group
  stop_pid "$STATE/registry-token.pid"
  stop_pid "$STATE/token-issuer.pid"
  stop_pid "$STATE/registry-tls.pid"
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
# PROBE URL [CA]: plain HTTP must answer 200; HTTPS (verified against CA) any HTTP status (401
# from an authenticating service means it is up)
PROBE='
import ssl, sys, urllib.error, urllib.request
url, ca = sys.argv[1], (sys.argv[2:] or [None])[0]
context = ssl.create_default_context(cafile=ca) if ca else None
try:
    urllib.request.urlopen(url, timeout=2, context=context)
except urllib.error.HTTPError as exc:
    sys.exit(0 if url.startswith("https:") and exc.code < 500 else 1)
'
service_up() {  # NAME PATH [https]: the service answers on its recorded port
  local scheme=http ca=()
  if [[ ${3:-} == https ]]; then scheme=https ca=("$PKI/ca.pem"); fi
  [[ -f $STATE/$1.port && -f $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null \
    && python3 -c "$PROBE" "$scheme://127.0.0.1:$(cat "$STATE/$1.port")$2" "${ca[@]}" >/dev/null 2>&1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_up() {  # NAME PATH TRIES [https]: poll every 0.5 s; on failure show the end of NAME.log and exit
  for _ in $(seq 1 "$3"); do
    service_up "$1" "$2" "${4:-}" && return 0
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

# --- TLS and authentication: the test CA, certificates and credentials --------------------------
tools="$STATE/tools-venv"
if [[ ! -f $tools/.ready ]]; then
  log "installing trustme and bcrypt in $tools (once)"
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check "trustme==1.2.1" "bcrypt==5.0.0" >&2
  touch "$tools/.ready"
fi
"$tools/bin/python" "$SCRIPTS/test_pki.py" "$PKI"
# shellcheck disable=SC1091
source "$PKI/credentials.env"

trust_registry() {  # PORT: dockerd trusts the test CA for 127.0.0.1:PORT (read at each push)
  mkdir -p "/etc/docker/certs.d/127.0.0.1:$1"
  cp "$PKI/ca.pem" "/etc/docker/certs.d/127.0.0.1:$1/ca.crt"
}
start_registry() {  # NAME AUTH-YAML: docker-registry with TLS on a free port
  stop_pid "$STATE/$1.pid"
  local port
  port=$(free_port)
  mkdir -p "$STATE/$1-data"
  cat >"$STATE/$1.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/$1-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $PKI/server.pem
    key: $PKI/server.key
$2
EOF
  log "starting docker-registry ($1) on 127.0.0.1:$port"
  nohup /usr/bin/docker-registry serve "$STATE/$1.yml" >"$STATE/$1.log" 2>&1 &
  echo $! >"$STATE/$1.pid"
  echo "$port" >"$STATE/$1.port"
  trust_registry "$port"
  wait_up "$1" /v2/ 60 https
}

# --- OCI registry with TLS and htpasswd (bcrypt) authentication ------------------------------
if ! service_up registry-tls /v2/ https; then
  start_registry registry-tls "auth:
  htpasswd:
    realm: pytest-mlops
    path: $PKI/htpasswd"
fi

# --- OCI registry with TLS and token authentication, and its token issuer --------------------
if ! service_up token-issuer /stats https; then
  stop_pid "$STATE/token-issuer.pid"
  port=$(free_port)
  log "starting the token issuer on 127.0.0.1:$port"
  nohup "$tools/bin/python" "$SCRIPTS/registry_token_issuer.py" --port "$port" --pki "$PKI" \
    --service pytest-mlops-registry --issuer pytest-mlops-test-issuer \
    >"$STATE/token-issuer.log" 2>&1 &
  echo $! >"$STATE/token-issuer.pid"
  echo "$port" >"$STATE/token-issuer.port"
  wait_up token-issuer /stats 60 https
  stop_pid "$STATE/registry-token.pid"  # its realm moved
fi
if ! service_up registry-token /v2/ https; then
  start_registry registry-token "  relativeurls: true
auth:
  token:
    realm: https://127.0.0.1:$(cat "$STATE/token-issuer.port")/token
    service: pytest-mlops-registry
    issuer: pytest-mlops-test-issuer
    rootcertbundle: $PKI/ca.pem"
fi

# --- MLflow with its own authentication (basic-auth app), behind TLS --------------------------
if [[ ! -f $mlflow_venv/.auth-ready ]]; then
  log "installing mlflow[auth]==$MLFLOW in $mlflow_venv (once)"
  "$mlflow_venv/bin/pip" install -q --disable-pip-version-check "mlflow[auth]==$MLFLOW" >&2
  touch "$mlflow_venv/.auth-ready"
fi
if ! service_up mlflow-auth /health https; then
  stop_pid "$STATE/mlflow-auth.pid" group
  port=$(free_port)
  mkdir -p "$STATE/mlflow-auth"
  cat >"$STATE/mlflow-auth/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$STATE/mlflow-auth/basic_auth.db
admin_username = $MLOPS_TEST_MLFLOW_USER
admin_password = $MLOPS_TEST_MLFLOW_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# a password check is PBKDF2 (about a second on a loaded machine): remember good ones a while
auth_cache_ttl_seconds = 600
EOF
  chmod 600 "$STATE/mlflow-auth/basic_auth.ini"
  [[ -f $STATE/mlflow-auth/secret-key ]] \
    || (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$STATE/mlflow-auth/secret-key")
  log "starting mlflow server --app-name basic-auth (TLS) on 127.0.0.1:$port"
  MLFLOW_AUTH_CONFIG_PATH="$STATE/mlflow-auth/basic_auth.ini" \
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$STATE/mlflow-auth/secret-key")" setsid nohup \
    "$mlflow_venv/bin/mlflow" server --app-name basic-auth --host 127.0.0.1 --port "$port" \
    --workers 1 --uvicorn-opts "--ssl-certfile $PKI/server.pem --ssl-keyfile $PKI/server.key" \
    --backend-store-uri "sqlite:///$STATE/mlflow-auth/mlflow.db" \
    --artifacts-destination "$STATE/mlflow-auth/artifacts" >"$STATE/mlflow-auth.log" 2>&1 &
  echo $! >"$STATE/mlflow-auth.pid"
  echo "$port" >"$STATE/mlflow-auth.port"
  wait_up mlflow-auth /health 180 https
fi

cat >"$STATE/env" <<EOF
export DOCKER_HOST=unix://$SOCKET
export MLOPS_TEST_REGISTRY=127.0.0.1:$(cat "$STATE/registry.port")
export MLOPS_TEST_REGISTRY_DATA=$STATE/registry-data
export MLOPS_TEST_BASE_IMAGE=$BASE_IMAGE
export MLOPS_TEST_MLFLOW=http://127.0.0.1:$(cat "$STATE/mlflow.port")
export MLOPS_TEST_CA=$PKI/ca.pem
export MLOPS_TEST_TLS_CERT=$PKI/server.pem
export MLOPS_TEST_TLS_KEY=$PKI/server.key
export MLOPS_TEST_HTPASSWD=$PKI/htpasswd
export MLOPS_TEST_REGISTRY_USER=$MLOPS_TEST_REGISTRY_USER
export MLOPS_TEST_REGISTRY_PASSWORD=$MLOPS_TEST_REGISTRY_PASSWORD
export MLOPS_TEST_REGISTRY_READER=$MLOPS_TEST_REGISTRY_READER
export MLOPS_TEST_REGISTRY_READER_PASSWORD=$MLOPS_TEST_REGISTRY_READER_PASSWORD
export MLOPS_TEST_REGISTRY_TLS=127.0.0.1:$(cat "$STATE/registry-tls.port")
export MLOPS_TEST_REGISTRY_TLS_DATA=$STATE/registry-tls-data
export MLOPS_TEST_REGISTRY_TOKEN=127.0.0.1:$(cat "$STATE/registry-token.port")
export MLOPS_TEST_TOKEN_ISSUER=https://127.0.0.1:$(cat "$STATE/token-issuer.port")
export MLOPS_TEST_MLFLOW_TLS=https://127.0.0.1:$(cat "$STATE/mlflow-auth.port")
export MLOPS_TEST_MLFLOW_USER=$MLOPS_TEST_MLFLOW_USER
export MLOPS_TEST_MLFLOW_PASSWORD=$MLOPS_TEST_MLFLOW_PASSWORD
EOF
chmod 600 "$STATE/env"
log "ready: $(grep -v PASSWORD "$STATE/env" | tr '\n' ' ')"
