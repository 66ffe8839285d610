#!/usr/bin/env bash
# Sets up everything pbx-codes needs on a Debian machine, idempotently: Debian packages, a virtualenv with the
# project and its test dependencies, and the Asterisk root filesystem for the real bench.
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-pbx   skip the Asterisk root filesystem
# Elsewhere a piece that cannot be installed is logged and its tests skip with the reason; under CI=true it fails
# here, in one line, since CI must run every test the README promises.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
with_pbx=1
[ "${1:-}" = "--no-pbx" ] && with_pbx=0

log() { printf '[setup] %s\n' "$*" >&2; }
case "${CI:-}" in true|TRUE|True|1|yes) ci=1 ;; *) ci=0 ;; esac
# A piece that cannot be installed: under CI the run stops with one line; elsewhere its tests skip and say why.
missing_piece() {
  if [ "$ci" = 1 ]; then printf '[setup] CI=true: %s\n' "$1" >&2; exit 1; fi
  log "$1; $2"
}
sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# Debian packages: the test peers and servers (sipp, debootstrap, PostgreSQL, Chromium, Prometheus's promtool), the
# Lua interpreters FreeSWITCH's mod_lua may embed, the linters for the shell scripts, Python's venv, and the C
# compiler and Python headers of the optional compiled build (setup.py, PBX_CODES_COMPILE=1; tests/test_compiled.py).
apt_packages=(debootstrap debian-archive-keyring sip-tester postgresql chromium docker-compose prometheus
              lua5.1 lua5.2 lua5.3 lua5.4 lua-socket shellcheck python3-venv gcc python3-dev)
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
      failed=()
      for p in "${missing[@]}"; do
        DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
          || failed+=("$p")
      done
      [ ${#failed[@]} -eq 0 ] || missing_piece "Debian packages could not be installed: ${failed[*]}" \
        "tests that need them will skip and say why"
    fi
  else
    missing_piece "not root and no sudo: cannot install Debian packages ${missing[*]}" \
      "tests that need them will skip and say why"
  fi
fi

# The project in a virtualenv, with its test extras.
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.pbx-codes-installed
want=$(cat setup.cfg pyproject.toml setup.py | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pbx-codes and its test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# The Asterisk 22 root filesystem (Debian sid) for the real bench; cached between runs.
if [ "$with_pbx" = 1 ] && [ -x scripts/provision-asterisk-rootfs.sh ]; then
  if [ "$(id -u)" -eq 0 ]; then
    scripts/provision-asterisk-rootfs.sh \
      || missing_piece "the Asterisk root filesystem could not be built (scripts/provision-asterisk-rootfs.sh)" \
        "its tests will skip"
  else
    missing_piece "not root: no Asterisk root filesystem (the chroot bench needs root)" "its tests will skip"
  fi
fi
log "ready: $root/.venv/bin/pbx-codes"
