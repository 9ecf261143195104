#!/usr/bin/env bash
# Install Debian's chromium (headless) to render the HTML report in the tests. Idempotent.
# apt runs under `flock /tmp/apt.lock`, so concurrent installers wait for each other.
set -euo pipefail
# the reports carry status emoji (✅ ❌ ⚠️): without a colour emoji font they render as boxes
emoji_font() { fc-list 2>/dev/null | grep -qi "Noto Color Emoji"; }
if command -v chromium >/dev/null 2>&1 && emoji_font; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not root or no apt-get: install Debian's 'chromium' package yourself" >&2
  # in CI the HTML report must be rendered for real; elsewhere its test skips without chromium
  [[ -n ${CI:-} ]] && exit 1
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: apt-get install chromium fonts-noto-color-emoji"
flock /tmp/apt.lock apt-get update -qq
flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
  fonts-noto-color-emoji >/dev/null
command -v chromium >/dev/null
