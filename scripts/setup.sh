#!/usr/bin/env bash
# Sets up everything pbx-codes needs on a Debian machine, idempotently: Debian packages, a virtualenv with the
# project and its test dependencies, and the Asterisk root filesystem for the real bench.
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-pbx   skip the Asterisk root filesystem
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
with_pbx=1
[ "${1:-}" = "--no-pbx" ] && with_pbx=0

log() { printf '[setup] %s\n' "$*" >&2; }
sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# Debian packages: the test peers and servers (sipp, debootstrap, PostgreSQL, Chromium) and Python's venv.
apt_packages=(debootstrap debian-archive-keyring sip-tester postgresql chromium docker-compose lua5.1 lua5.2 lua-socket python3-venv)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  if sudo_cmd true 2>/dev/null; then
    sudo_cmd apt-get update -qq || log "apt-get update failed; trying with the lists there are"
    if ! DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null; then
      # One missing package must not cost the others: retry one by one.
      for p in "${missing[@]}"; do
        DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
          || log "Debian package $p could not be installed; tests that need it will skip and say why"
      done
    fi
  else
    log "not root and no sudo: cannot install ${missing[*]}; tests that need them will skip and say why"
  fi
fi

# The project in a virtualenv, with its test extras.
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.pbx-codes-installed
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pbx-codes and its test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# The Asterisk 22 root filesystem (Debian sid) for the real bench; cached between runs.
if [ "$with_pbx" = 1 ] && [ -x scripts/provision-asterisk-rootfs.sh ]; then
  if [ "$(id -u)" -eq 0 ]; then
    scripts/provision-asterisk-rootfs.sh || log "Asterisk root filesystem could not be built; its tests will skip"
  else
    log "not root: no Asterisk root filesystem (chroot needs root); its tests will skip"
  fi
fi
log "ready: $root/.venv/bin/pbx-codes"
