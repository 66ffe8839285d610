#!/usr/bin/env bash
# The compose bench (docker/compose.yaml) with no container registry: builds what is missing or stale, starts it,
# places calls through it, stops it. Idempotent; a second `up` builds nothing.
#
#   scripts/docker-bench.sh up                                   base image, wheels, images, secrets; start and wait
#                                                                until every service is healthy
#   scripts/docker-bench.sh call --catalog ID CODE [PHRASE]      one call through the containerised Asterisk to the
#                                                                carrier answering CODE [PHRASE]; prints the CDR
#                                                                record Asterisk wrote, as JSON
#   scripts/docker-bench.sh down [--volumes]                     stop and remove the bench (and its data)
#   scripts/docker-bench.sh build                                only the images (what `up` does first)
#
# Everything is named after the compose project (PBX_CODES_DOCKER_PROJECT, default pbxcodes-bench), so only what
# this script started is ever stopped. Images: pbx-codes/<name>:bench, labelled with a hash of their inputs (the
# base image, the build context); the base is scripts/docker-base.sh's, the plugin's wheels are built here with
# `pip wheel` for the base's Python and installed in the image with `pip install --no-index`.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT="${PBX_CODES_DOCKER_PROJECT:-pbxcodes-bench}"
COMPOSE_FILE="${REPO_DIR}/docker/compose.yaml"
CARRIERS_FILE="${REPO_DIR}/docker/sipp/carriers.txt"
CACHE_DIR="${PBX_CODES_CACHE:-$HOME/.cache/pbx-codes}"
PYTHON="${PBX_CODES_PYTHON:-${REPO_DIR}/.venv/bin/python}"
# image name -> Dockerfile directory under docker/
IMAGES=(asterisk sipp plugin postgres prometheus)
# What `up` starts: everything but the one-shot rounds and the opt-in FreeSWITCH profile.
SERVICES=(postgres plugin prometheus carrier asterisk caller)
LABEL="org.pbx-codes.inputs"
UP_TIMEOUT="${PBX_CODES_UP_TIMEOUT:-180}"
CDR_TIMEOUT="${PBX_CODES_CDR_TIMEOUT:-30}"

log() { printf '[docker-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -p "${PROJECT}" -f "${COMPOSE_FILE}" "$@"
    elif command -v docker-compose >/dev/null; then
        docker-compose -p "${PROJECT}" -f "${COMPOSE_FILE}" "$@"
    else
        die "neither \`docker compose\` nor \`docker-compose\` is installed (Debian: apt-get install docker-compose)"
    fi
}

# --- build ------------------------------------------------------------------------------------------------------

# The project's wheel and its dependencies' wheels for the base's Python, cached by the sources' hash.
build_wheels() {
    local rootfs="$1" pyver key dir src
    [[ -x "${PYTHON}" ]] || PYTHON=python3
    pyver="$(chroot "${rootfs}" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
    src="$(mktemp -d)"
    # The working tree by default; PBX_CODES_WHEEL_SOURCE=head takes the last commit (a checkout others edit).
    if [[ "${PBX_CODES_WHEEL_SOURCE:-worktree}" == head ]]; then
        git -C "${REPO_DIR}" archive HEAD setup.cfg pyproject.toml README.md pbx_codes | tar -x -C "${src}"
    else
        (cd "${REPO_DIR}" && cp -r setup.cfg pyproject.toml README.md pbx_codes "${src}/")
    fi
    find "${src}" -name __pycache__ -prune -exec rm -rf {} +
    key="$(cd "${src}" && {
        echo "cp${pyver}"
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16)"
    dir="${CACHE_DIR}/docker-wheels/${key}"
    if [[ ! -f "${dir}/.complete" ]]; then
        log "building wheels for Python ${pyver:0:1}.${pyver:1} (the base's)"
        rm -rf "${dir}"
        mkdir -p "${dir}"
        # From the copy: pip builds in the source tree, and the checkout is shared.
        "${PYTHON}" -m pip wheel -q --no-deps --disable-pip-version-check -w "${dir}" "${src}" \
            >"${dir}.log" 2>&1 || { cat "${dir}.log" >&2; rm -rf "${src}"; die "pip wheel failed"; }
        local wheel
        wheel="$(ls "${dir}"/pbx_codes-*.whl)"
        # The dependencies as published wheels for the base's CPython and glibc: nothing to compile.
        "${PYTHON}" -m pip download -q --disable-pip-version-check --only-binary=:all: --implementation cp \
            --python-version "${pyver}" --abi "cp${pyver}" --abi abi3 --abi none \
            --platform manylinux_2_39_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
            -d "${dir}" "${wheel}[postgres]" >>"${dir}.log" 2>&1 \
            || { cat "${dir}.log" >&2; die "pip download of the dependencies failed"; }
        touch "${dir}/.complete"
        rm -f "${dir}.log"
    fi
    rm -rf "${src}"
    printf '%s\n' "${dir}"
}

# The build context every image shares: exactly the files the Dockerfiles copy, plus the wheels; no secret, no
# .git, no virtualenv. Deterministic (sorted, fixed times and owners), so its hash says whether anything changed.
make_context() {
    local wheels="$1" out="$2" stage
    stage="$(mktemp -d)"
    (cd "${REPO_DIR}" && cp -a --parents asterisk docker scripts/provision-asterisk-rootfs.sh \
        pbx_codes/testbed/templates "${stage}/")
    rm -rf "${stage}/docker/secrets" "${stage}/docker/plugin/wheels"
    mkdir -p "${stage}/docker/plugin/wheels"
    cp "${wheels}"/*.whl "${stage}/docker/plugin/wheels/"
    find "${stage}" -name __pycache__ -prune -exec rm -rf {} +
    tar -C "${stage}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "${out}" .
    rm -rf "${stage}"
}

image_inputs() {
    docker image inspect -f "{{index .Config.Labels \"${LABEL}\"}}" "$1" 2>/dev/null || true
}

build_images() {
    local base rootfs wheels ctx hash name lock started=${SECONDS}
    # One build at a time on this machine (two test sessions, a person and CI): they share the root filesystem,
    # the wheel cache and the image names.
    mkdir -p "${CACHE_DIR}"
    exec {lock}>"${CACHE_DIR}/docker-bench.lock"
    flock "${lock}"
    base="$("${REPO_DIR}/scripts/docker-base.sh")"
    rootfs="$("${REPO_DIR}/scripts/docker-base.sh" --rootfs)"
    wheels="$(build_wheels "${rootfs}")"
    ctx="$(mktemp)"
    # shellcheck disable=SC2064  # the path is fixed now, on purpose
    trap "rm -f '${ctx}'" RETURN
    make_context "${wheels}" "${ctx}"
    hash="$({ echo "${base}"; docker image inspect -f '{{.Id}}' "${base}"; cat "${ctx}"; } | sha256sum | cut -c1-16)"
    for name in "${IMAGES[@]}"; do
        if [[ "$(image_inputs "pbx-codes/${name}:bench")" == "${hash}" ]]; then
            continue
        fi
        log "building pbx-codes/${name}:bench"
        # The legacy builder takes a tar on stdin as the context; BuildKit (when installed) does the same.
        docker build -q -f "docker/${name}/Dockerfile" --build-arg "BASE=${base}" --label "${LABEL}=${hash}" \
            -t "pbx-codes/${name}:bench" - <"${ctx}" >/dev/null \
            || die "building pbx-codes/${name}:bench failed"
    done
    docker image prune -f --filter "label=${LABEL}" >/dev/null 2>&1 || true
    flock -u "${lock}"
    log "images ready ($((SECONDS - started)) s)"
}

# --- run --------------------------------------------------------------------------------------------------------

container_of() {
    local id
    id="$(compose ps -q "$1" 2>/dev/null | head -n 1)"
    [[ -n "${id}" ]] || die "service $1 is not running (scripts/docker-bench.sh up)"
    printf '%s\n' "${id}"
}

wait_healthy() {
    local deadline=$((SECONDS + UP_TIMEOUT)) service id state pending
    while :; do
        pending=()
        for service in "${SERVICES[@]}"; do
            id="$(compose ps -q "${service}" 2>/dev/null | head -n 1)"
            state="$( [[ -n "${id}" ]] && docker inspect -f \
                '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "${id}")"
            [[ "${state}" == running/healthy || "${state}" == running/none ]] || pending+=("${service}:${state:-absent}")
        done
        ((${#pending[@]} == 0)) && return
        if ((SECONDS >= deadline)); then
            compose logs --tail=20 >&2 || true
            die "not healthy after ${UP_TIMEOUT} s: ${pending[*]}"
        fi
        sleep 1
    done
}

cmd_up() {
    build_images
    "${REPO_DIR}/docker/make-secrets.sh" >/dev/null
    local started=${SECONDS}
    compose up -d --no-build "${SERVICES[@]}" >&2
    wait_healthy
    log "up: every service healthy ($((SECONDS - started)) s); console http://127.0.0.1:${PBX_CODES_CONSOLE_PORT:-8088}/?token=\$(cat docker/secrets/console_token), Prometheus http://127.0.0.1:${PBX_CODES_PROMETHEUS_PORT:-9090}"
}

cmd_down() {
    local args=(--remove-orphans -t 5)
    [[ "${1:-}" == --volumes ]] && args+=(--volumes)
    compose down "${args[@]}" >&2
}

# The carrier's port (the number to dial) for a catalog, a code and optionally a phrase, from the carriers file.
carrier_port() {
    local catalog="$1" code="$2" phrase="$3" port cat c p
    while IFS='|' read -r port cat c p; do
        [[ "${port}" =~ ^[0-9]+$ && "${cat}" == "${catalog}" && "${c}" == "${code}" ]] || continue
        if [[ -z "${phrase}" || "${p}" == "${phrase}" ]]; then
            printf '%s\n' "${port}"
            return
        fi
    done <"${CARRIERS_FILE}"
    return 1
}

cmd_call() {
    local catalog="" code="" phrase=""
    while (($#)); do
        case "$1" in
            --catalog) catalog="${2:-}"; shift 2 ;;
            --catalog=*) catalog="${1#--catalog=}"; shift ;;
            -*) die "unknown option $1" ;;
            *) if [[ -z "${code}" ]]; then code="$1"; elif [[ -z "${phrase}" ]]; then phrase="$1"; else
                   die "too many arguments"; fi; shift ;;
        esac
    done
    [[ -n "${catalog}" && -n "${code}" ]] || die "usage: docker-bench.sh call --catalog ID CODE [PHRASE]"
    local port
    port="$(carrier_port "${catalog}" "${code}" "${phrase}")" || {
        log "no carrier of the bench answers ${catalog} ${code}${phrase:+ ${phrase}}; the carriers are:"
        grep -v -E '^[[:space:]]*(#|$)' "${CARRIERS_FILE}" | awk -F'|' '{print "  " $2 " " $3 " " $4}' >&2
        exit 2
    }
    local caller src deadline record
    caller="$(container_of caller)"
    # A caller id of this call only: the CDR's src finds its record among all others.
    src="9$(date +%s%N | cut -c8-16)$((RANDOM % 10))"
    docker exec "${caller}" sipp asterisk:5060 -sf /etc/pbx-codes-bench/caller.xml -s "${port}" \
        -key caller "${src}" -m 1 -nostdin -timeout 30s -recv_timeout 20000 >/dev/null 2>&1 \
        || log "the call did not end as the caller's scenario expected; looking for its CDR anyway"
    deadline=$((SECONDS + CDR_TIMEOUT))
    while :; do
        record="$(docker exec "${caller}" sh -c 'cat /cdr/pbx_codes.json; echo "--- csv"; cat /cdr/pbx_codes.csv' \
            2>/dev/null | cdr_record "${src}" || true)"
        [[ -n "${record}" ]] && break
        ((SECONDS < deadline)) || die "Asterisk wrote no CDR for the call from ${src} within ${CDR_TIMEOUT} s"
        sleep 0.2
    done
    printf '%s\n' "${record}"
}

# The record of the call from SRC, as JSON: the line cdr_custom wrote to pbx_codes.json; when that line is not
# valid JSON (Asterisk cuts a JSON record at 1 KB and does not escape "\"), the same record from pbx_codes.csv,
# named by the fields of asterisk/cdr_custom.conf. Reads the JSON file, a "--- csv" line, the CSV file.
cdr_record() {
    local program
    program="$(cat <<'PY'
import csv, json, re, sys
src, conf = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
text = sys.stdin.read()
json_part, _, csv_part = text.partition("--- csv\n")
for line in json_part.splitlines():
    if src in line:
        try:
            row = json.loads(line)
        except ValueError:
            break
        if row.get("src") == src:
            print(json.dumps(row, ensure_ascii=False, indent=2))
            sys.exit(0)
fields = re.search(r"^\[pbx_codes\.csv\].*?^fields\s*=\s*(.*)$", conf, re.M | re.S).group(1)
names = [f.strip().split("(")[0] for f in fields.split(",")]
for values in csv.reader(csv_part.splitlines()):
    row = dict(zip(names, values))
    if row.get("src") == src:
        print(json.dumps(row, ensure_ascii=False, indent=2))
        sys.exit(0)
sys.exit(1)
PY
)"
    python3 -c "${program}" "$1" "${REPO_DIR}/asterisk/cdr_custom.conf"
}

main() {
    command -v docker >/dev/null || die "docker is not installed"
    cd "${REPO_DIR}"
    local command="${1:-}"
    shift || true
    case "${command}" in
        up) cmd_up ;;
        down) cmd_down "$@" ;;
        build) build_images ;;
        call) cmd_call "$@" ;;
        *) die "usage: docker-bench.sh up | call --catalog ID CODE [PHRASE] | down [--volumes] | build" ;;
    esac
}

main "$@"
