#!/usr/bin/env bash
# Plays the bench's carriers: one sipp UAS per line of the carriers file, each answering every INVITE with its
# code and phrase. Exits (so the container restarts) as soon as any of them stops.
#
#   carrier.sh            start every carrier and wait
#   carrier.sh --check    health check: every carrier started by this container is still running
#
# CARRIERS_FILE (default /etc/pbx-codes-bench/carriers.txt) lists "port|catalog|code|phrase".
set -euo pipefail

CARRIERS_FILE="${CARRIERS_FILE:-/etc/pbx-codes-bench/carriers.txt}"
RUN_DIR="${RUN_DIR:-/tmp/carriers}"

log() { printf '[carrier] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The lines of the carriers file without comments and blank lines.
carrier_lines() { grep -v -E '^[[:space:]]*(#|$)' "${CARRIERS_FILE}"; }

check() {
    local pidfile count=0
    for pidfile in "${RUN_DIR}"/*.pid; do
        [[ -e "${pidfile}" ]] || exit 1
        kill -0 "$(cat "${pidfile}")" 2>/dev/null || exit 1
        count=$((count + 1))
    done
    ((count > 0))
}

# A UAS scenario that answers an INVITE with "<code> <phrase>" and takes the ACK.
write_scenario() {
    # The phrase goes into CDATA as it is: it cannot close it, since start() refuses "]".
    local file="$1" code="$2" phrase="$3"
    cat >"${file}" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<scenario name="carrier ${code}">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
SIP/2.0 100 Trying
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
SIP/2.0 ${code} ${phrase}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
XML
}

start() {
    [[ -r "${CARRIERS_FILE}" ]] || die "cannot read ${CARRIERS_FILE}"
    mkdir -p "${RUN_DIR}"
    rm -f "${RUN_DIR}"/*.pid
    local port catalog code phrase pids=()
    while IFS='|' read -r port catalog code phrase; do
        [[ "${port}" =~ ^[0-9]{2,5}$ ]] || die "bad port in line: ${port}|${catalog}|${code}|${phrase}"
        [[ "${code}" =~ ^[3-6][0-9][0-9]$ ]] || die "port ${port}: code must be a SIP failure code 300-699"
        [[ -n "${phrase}" && ! "${phrase}" =~ [][|[:cntrl:]] ]] \
            || die "port ${port}: phrase is empty or has [ ] | or control characters"
        write_scenario "${RUN_DIR}/${port}.xml" "${code}" "${phrase}"
        log "port ${port}: ${catalog} answers ${code} ${phrase}"
        # -nostdin: no terminal in a container; the statistics screen goes nowhere, errors to the log.
        sipp -sf "${RUN_DIR}/${port}.xml" -p "${port}" -nostdin -trace_err -error_file "${RUN_DIR}/${port}.errors" \
            >/dev/null &
        pids+=("$!")
        echo "$!" >"${RUN_DIR}/${port}.pid"
    done < <(carrier_lines)
    ((${#pids[@]})) || die "${CARRIERS_FILE} lists no carrier"
    trap 'kill "${pids[@]}" 2>/dev/null || true' TERM INT
    # The first carrier to stop ends the container: a half-working bench would explain the wrong calls.
    wait -n "${pids[@]}" || true
    log "a carrier stopped; stopping the others"
    kill "${pids[@]}" 2>/dev/null || true
    exit 1
}

case "${1:-}" in
    --check) check ;;
    "") start ;;
    *) die "usage: carrier.sh [--check]" ;;
esac
