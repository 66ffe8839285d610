#!/usr/bin/env bash
# Builds (or reuses) the base image of the compose bench without any container registry: a Debian sid root
# filesystem made by debootstrap (scripts/provision-asterisk-rootfs.sh --rootfs-only, the chroot bench's own step),
# every Debian package an image of docker/ needs installed into it, then `docker import`. Prints the image's name.
#
#   scripts/docker-base.sh            build when missing or stale, print e.g. pbx-codes/base:3f2a9c0d1e2b
#   scripts/docker-base.sh --rootfs   only print the root filesystem's path (wheels are built in it)
#
# The Dockerfiles take it as their BASE build argument; with a registry they build FROM debian:sid-slim instead
# and install the same packages themselves. The tag is a hash of this script and the chroot bench's package list,
# so a second run imports nothing. The Debian mirror comes from this machine's apt sources at run time (the
# provisioning script's detect_mirror; PBX_CODES_DEBIAN_MIRROR overrides it): no host is written into the repository.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVISION="${SCRIPT_DIR}/provision-asterisk-rootfs.sh"
ROOTFS="${PBX_CODES_DOCKER_ROOTFS:-$HOME/.cache/pbx-codes/docker-base-sid}"
IMAGE_REPO="pbx-codes/base"
# Beyond the chroot bench's packages (asterisk, asterisk-modules, ca-certificates): sipp for the carriers and the
# caller, jq for the caller's CDR table, Python with venv and pip (the plugin's venv; pip builds its wheels here,
# for this Python), PostgreSQL for the store, Prometheus with promtool.
DOCKER_PACKAGES=(sip-tester jq python3 python3-venv python3-pip postgresql prometheus)

log() { printf '[docker-base] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

key() {
    { cat "${BASH_SOURCE[0]}"; grep -E '^ROOTFS_PACKAGES=' "${PROVISION}"; } | sha256sum | cut -c1-12
}

# Packages installed inside the root filesystem: no daemon may start (it would run on this machine, since a chroot
# shares the host's network), and PostgreSQL makes no cluster (its container makes one in its volume).
install_packages() {
    local root="$1"
    printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
    chmod 0755 "${root}/usr/sbin/policy-rc.d"
    mkdir -p "${root}/etc/postgresql-common/createcluster.d"
    printf 'create_main_cluster = false\n' >"${root}/etc/postgresql-common/createcluster.d/00-pbx-codes.conf"
    mount -t proc proc "${root}/proc"
    # shellcheck disable=SC2064  # the path is fixed now, on purpose
    trap "umount '${root}/proc' 2>/dev/null || true" EXIT
    chroot "${root}" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 /bin/sh -ec '
        # A mirror may serve a frozen snapshot of sid whose Release has passed its Valid-Until date: the
        # packages are still checked against its signed hashes.
        apt-get -o Acquire::Check-Valid-Until=false update -qq
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
        apt-get clean
        rm -rf /var/lib/apt/lists/*' sh "${DOCKER_PACKAGES[@]}"
    umount "${root}/proc"
    trap - EXIT
    rm -f "${root}/usr/sbin/policy-rc.d"
    # ssl-cert made a "snakeoil" key pair at install time: a private key no image should carry (nothing here uses it).
    rm -f "${root}/etc/ssl/private/ssl-cert-snakeoil.key" "${root}/etc/ssl/certs/ssl-cert-snakeoil.pem"
    rm -rf "${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/locale/* 2>/dev/null || true
}

build_rootfs() {
    local want="$1"
    [[ "$(cat "${ROOTFS}/.docker-base" 2>/dev/null)" == "${want}" ]] && return
    [[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap and chroot need it)"
    # A root filesystem made for another package list is made again: packages are never half added or removed.
    [[ -e "${ROOTFS}/.docker-base" ]] && rm -rf "${ROOTFS}"
    local started=${SECONDS}
    "${PROVISION}" --rootfs-only "${ROOTFS}"
    log "installing into the root filesystem: ${DOCKER_PACKAGES[*]}"
    install_packages "${ROOTFS}"
    printf '%s\n' "${want}" >"${ROOTFS}/.docker-base"
    log "root filesystem ready in $((SECONDS - started)) s ($(du -sh "${ROOTFS}" | cut -f1))"
}

main() {
    local want image
    want="$(key)"
    if [[ "${1:-}" == --rootfs ]]; then
        build_rootfs "${want}"
        printf '%s\n' "${ROOTFS}"
        return
    fi
    image="${IMAGE_REPO}:${want}"
    if docker image inspect "${image}" >/dev/null 2>&1; then
        printf '%s\n' "${image}"
        return
    fi
    build_rootfs "${want}"
    local started=${SECONDS}
    log "importing ${ROOTFS} as ${image}"
    tar -C "${ROOTFS}" --numeric-owner --exclude=./proc/'*' --exclude=./sys/'*' --exclude=./dev/'*' \
        --exclude=./.debootstrapped --exclude=./.docker-base --exclude=./tmp/'*' -cf - . \
        | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "${image}" >/dev/null
    # Older bases of this project only hold disk space: the images built on them are rebuilt on the new one.
    docker image ls --format '{{.Repository}}:{{.Tag}}' "${IMAGE_REPO}" | grep -v -x -F "${image}" \
        | xargs -r docker image rm >/dev/null 2>&1 || true
    log "imported ${image} in $((SECONDS - started)) s"
    printf '%s\n' "${image}"
}

main "$@"
