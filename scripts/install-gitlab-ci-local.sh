#!/usr/bin/env bash
# gitlab-ci-local (npm), pinned with its whole dependency tree by scripts/gitlab-ci-local/
# package-lock.json, for the test that runs the GitLab template (tests/pipeline/). Kept OUTSIDE the
# clone, in ~/.cache/pytest-mlops/gitlab-ci-local/<hash of the lock file and Node's ABI>, and
# printed on the last line of stdout:
#
#   GCL=$(bash scripts/install-gitlab-ci-local.sh | tail -n1)   # the gitlab-ci-local executable
#
# Idempotent: a second run with the same lock file and Node reuses the installation. Needs Node
# >= 18 with npm (4.60.1 is the last release that runs on Node 20; 4.75 needs Node 22), rsync
# (gitlab-ci-local copies each job's files with it) and a C++ toolchain: its dependency re2 is a
# native module whose prebuilt binary comes from GitHub, so where GitHub is out of reach node-gyp
# compiles it (about two minutes, once). Missing Debian packages are installed as root, with apt
# under `flock /tmp/apt.lock`.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=scripts/gitlab-ci-local

log() { echo "install-gitlab-ci-local: $*" >&2; }
fail() {
  log "$*"
  exit 1
}

command -v node >/dev/null && command -v npm >/dev/null \
  || fail "Node.js >= 18 with npm is needed (Debian: apt-get install nodejs npm)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || fail "Node.js >= 18 is needed, found $(node --version)"

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v make >/dev/null || need+=(make)
command -v g++ >/dev/null || need+=(g++)
if ((${#need[@]})); then
  [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null \
    || fail "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  flock /tmp/apt.lock apt-get update -qq
  flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# the native module is built for one Node ABI: another Node gets its own installation
key=$(cat "$spec/package.json" "$spec/package-lock.json" <(node -p 'process.versions.modules') \
  | sha256sum | cut -c1-12)
root=${MLOPS_GITLAB_CI_LOCAL_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-mlops/gitlab-ci-local}
dir="$root/$key"
bin="$dir/node_modules/.bin/gitlab-ci-local"
stamp="$dir/.pytest-mlops-ready"

if [[ ! -f $stamp ]]; then
  log "installing gitlab-ci-local into $dir (npm ci; re2 may be compiled: about two minutes)"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$spec/package.json" "$spec/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) \
    || fail "npm ci failed in $dir (see npm's output above)"
  [[ -f $dir/node_modules/re2/build/Release/re2.node ]] \
    || fail "re2's native module was not built (is a C++ toolchain installed?)"
  version=$("$bin" --version)
  want=$(node -p "require('$dir/package.json').dependencies['gitlab-ci-local']")
  [[ $version == "$want" ]] || fail "installed gitlab-ci-local $version, expected $want"
  touch "$stamp"
fi
echo "$bin"
