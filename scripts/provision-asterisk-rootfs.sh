#!/usr/bin/env bash
# Build (or reuse) a Debian sid root filesystem with Asterisk for the pbx-codes bench.
#
# Usage:
#   scripts/provision-asterisk-rootfs.sh [DEST]          build DEST (default below) and configure Asterisk in it
#   scripts/provision-asterisk-rootfs.sh --configure-only [DEST]
#                                                         only the "configure Asterisk" step: for a Dockerfile that
#                                                         already installed the asterisk package, use DEST=/
#   scripts/provision-asterisk-rootfs.sh --rootfs-only DEST
#                                                         only the debootstrap step (cached): the base root
#                                                         filesystem of the Docker images (scripts/docker-base.sh),
#                                                         whose Asterisk image configures itself
#
# Default DEST: ${PBX_CODES_ROOTFS:-$HOME/.cache/pbx-codes/asterisk-sid}
#
# Why sid: the bench needs Asterisk >= 22.7 (TechCause in Hangup events) and the Debian package of that age lives in
# sid. Why a chroot: no service manager, no container runtime needed; everything listens on 127.0.0.1.
#
# The Debian mirror is taken from this machine's own apt sources at run time (PBX_CODES_DEBIAN_MIRROR overrides it),
# so no host is written into the repository.
#
# Idempotent: DEST/.provisioned holds a hash of this script, asterisk/ and the bench templates; when it matches,
# nothing is done. The slow debootstrap step has its own stamp (DEST/.debootstrapped) keyed on the package list, so
# a change to the config only reruns the fast configure step.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
TEMPLATES_DIR="${REPO_DIR}/pbx_codes/testbed/templates"
CONFIG_DIR="${REPO_DIR}/asterisk"

# Packages in the root filesystem. Lean on purpose: minbase plus Asterisk and what its modules need at run time.
ROOTFS_PACKAGES="asterisk,asterisk-modules,ca-certificates"
# Host tools the bench uses: debootstrap builds the rootfs, sipp (package sip-tester) plays caller and carrier.
HOST_PACKAGES=(debootstrap debian-archive-keyring sip-tester)
# The user Asterisk runs as; the bench runs "asterisk -U root" inside the chroot.
RUN_USER="${PBX_CODES_ASTERISK_USER:-root}"

log() { printf '[provision-asterisk] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- host side -------------------------------------------------------------------------------------------------

ensure_host_packages() {
    local missing=() pkg
    for pkg in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Print the first Debian archive URI from the machine's apt sources (deb822 first, then one-line format),
# skipping the security archive, which has no sid.
detect_mirror() {
    if [[ -n "${PBX_CODES_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "${PBX_CODES_DEBIAN_MIRROR}"
        return
    fi
    local uri
    uri="$(
        {
            cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1)=="uris:" {for (i=2;i<=NF;i++) print $i}'
            cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                | awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}'
        } | grep -v -- '-security' | grep -E '/debian/?$' | head -n1
    )"
    [[ -n "$uri" ]] || die "no Debian archive found in /etc/apt/sources*; set PBX_CODES_DEBIAN_MIRROR"
    printf '%s\n' "${uri%/}"
}

config_hash() {
    {
        cat "${BASH_SOURCE[0]}"
        find "${CONFIG_DIR}" "${TEMPLATES_DIR}" -type f 2>/dev/null | LC_ALL=C sort | xargs -r cat
    } | sha256sum | cut -d' ' -f1
}

packages_hash() {
    printf '%s\n' "sid ${ROOTFS_PACKAGES}" | sha256sum | cut -d' ' -f1
}

run_debootstrap() {
    local dest="$1" mirror
    mirror="$(detect_mirror)"
    log "debootstrap sid into ${dest} (packages: ${ROOTFS_PACKAGES})"
    rm -rf "${dest}"
    mkdir -p "${dest}"
    # The sid Release file may be signed by a key newer than the host's keyring; the host's
    # debian-archive-keyring is tried first and, failing that, the check falls back to the package's own keyring
    # fetched inside the rootfs on the next run (see README).
    local keyring=()
    [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] \
        && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
    if ! debootstrap --variant=minbase "${keyring[@]}" --include="${ROOTFS_PACKAGES}" \
        sid "${dest}" "${mirror}" >"${dest}.debootstrap.log" 2>&1; then
        if grep -q -E 'NO_PUBKEY|Release signed by unknown key|Couldn.t find these debs|invalid signature' \
            "${dest}.debootstrap.log" && ((${#keyring[@]})); then
            log "sid Release not verifiable with the host keyring; retrying with --no-check-gpg (packages are still checked against the Release hashes)"
            rm -rf "${dest}"
            mkdir -p "${dest}"
            debootstrap --variant=minbase --no-check-gpg --include="${ROOTFS_PACKAGES}" \
                sid "${dest}" "${mirror}" >"${dest}.debootstrap.log" 2>&1 \
                || { tail -n 30 "${dest}.debootstrap.log" >&2; die "debootstrap failed"; }
        else
            tail -n 30 "${dest}.debootstrap.log" >&2
            die "debootstrap failed (log: ${dest}.debootstrap.log)"
        fi
    fi
    rm -f "${dest}.debootstrap.log"
    packages_hash >"${dest}/.debootstrapped"
}

# Drop what a bench never reads: docs, man pages, translations, apt lists and caches.
slim_rootfs() {
    local dest="$1"
    rm -rf "${dest}"/usr/share/doc/* "${dest}"/usr/share/man/* "${dest}"/usr/share/info/* \
        "${dest}"/usr/share/locale/* "${dest}"/var/cache/apt/archives/*.deb \
        "${dest}"/var/lib/apt/lists/* "${dest}"/var/cache/debconf/*-old 2>/dev/null || true
    mkdir -p "${dest}/etc/dpkg/dpkg.cfg.d"
    cat >"${dest}/etc/dpkg/dpkg.cfg.d/01-pbx-codes-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
}

# --- inside the rootfs (also valid with DEST=/ in an image) -----------------------------------------------------

# Make Asterisk start in a chroot/container: writable var dirs, the modules that fail noloaded, the project's
# dialplan and CDR config installed. Works on any root that has the asterisk package installed.
configure_asterisk() {
    local root="$1"
    [[ -x "${root%/}/usr/sbin/asterisk" ]] || die "${root} has no /usr/sbin/asterisk"
    # "asterisk -U root" still drops capabilities, so the directories the package gives to its own user must belong
    # to the user Asterisk runs as, or it exits when it opens its astdb. Done inside the root: var/run is an
    # absolute symlink to /run, which from outside would point at the host's /run.
    chroot "${root}" /bin/sh -ec '
        for d in /etc/asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk /var/log/asterisk/cdr-custom \
                 /run/asterisk /var/cache/asterisk; do
            mkdir -p "$d"
            chown -R "$1:$1" "$d"
        done' sh "${RUN_USER}"
    install -m 0644 "${TEMPLATES_DIR}/modules.conf" "${root%/}/etc/asterisk/modules.conf"
    local f
    for f in "${CONFIG_DIR}"/*.conf; do
        [[ -e "$f" ]] || continue
        install -m 0644 "$f" "${root%/}/etc/asterisk/$(basename "$f")"
    done
}

main() {
    local configure_only=0
    local rootfs_only=0
    if [[ "${1:-}" == --configure-only ]]; then
        configure_only=1
        shift
    elif [[ "${1:-}" == --rootfs-only ]]; then
        rootfs_only=1
        shift
    fi
    local dest="${1:-${PBX_CODES_ROOTFS:-$HOME/.cache/pbx-codes/asterisk-sid}}"
    [[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap and chroot need it)"

    if ((configure_only)); then
        configure_asterisk "${dest}"
        log "configured Asterisk in ${dest}"
        return
    fi

    local want
    want="$(config_hash)"
    if ((!rootfs_only)) && [[ -f "${dest}/.provisioned" && "$(cat "${dest}/.provisioned")" == "${want}" ]]; then
        log "up to date: ${dest}"
        return
    fi

    ensure_host_packages
    local started=${SECONDS}
    if [[ ! -f "${dest}/.debootstrapped" || "$(cat "${dest}/.debootstrapped")" != "$(packages_hash)" \
        || ! -x "${dest}/usr/sbin/asterisk" ]]; then
        mkdir -p "$(dirname "${dest}")"
        run_debootstrap "${dest}"
        slim_rootfs "${dest}"
    fi
    if ((rootfs_only)); then
        log "root filesystem ready: ${dest} ($((SECONDS - started)) s)"
        return
    fi
    configure_asterisk "${dest}"
    printf '%s\n' "${want}" >"${dest}/.provisioned"
    log "provisioned ${dest} in $((SECONDS - started)) s ($(du -sh "${dest}" | cut -f1))"
}

main "$@"
