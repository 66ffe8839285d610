#!/usr/bin/env bash
# Places one round of calls through the PBX, one per carrier of the carriers file (the number dialed is the
# carrier's port), then prints the CDR rows the PBX wrote for them, with pbx-codes' annotation.
#
# PBX_HOST/PBX_PORT: where the PBX takes calls (default asterisk:5060).
# CDR_FILE: the PBX's JSON-lines CDR file, if this container can read it (the Asterisk bench mounts it read-only);
#           unset or unreadable: the calls are placed and the console shows the result.
# CDR_WAIT: seconds to wait for the rows after the last call (default 20).
# CALLER_ID: the caller id of the calls (the CDR's src; default bench).
set -uo pipefail

CARRIERS_FILE="${CARRIERS_FILE:-/etc/pbx-codes-bench/carriers.txt}"
SCENARIO="${SCENARIO:-/etc/pbx-codes-bench/caller.xml}"
PBX_HOST="${PBX_HOST:-asterisk}"
PBX_PORT="${PBX_PORT:-5060}"
CDR_FILE="${CDR_FILE:-}"
CDR_WAIT="${CDR_WAIT:-20}"
CALLER_ID="${CALLER_ID:-bench}"

log() { printf '[caller] %s\n' "$*" >&2; }

rows() { if [[ -n "${CDR_FILE}" && -r "${CDR_FILE}" ]]; then wc -l <"${CDR_FILE}"; else echo 0; fi; }

before="$(rows)"
placed=0
failed=0
while IFS='|' read -r port catalog code phrase; do
    log "calling ${port}: the ${catalog} carrier there answers ${code} ${phrase}"
    if sipp "${PBX_HOST}:${PBX_PORT}" -sf "${SCENARIO}" -s "${port}" -key caller "${CALLER_ID}" -m 1 -nostdin -timeout 30s \
        -recv_timeout 20000 -trace_err -error_file /tmp/caller.errors >/dev/null; then
        placed=$((placed + 1))
    else
        # A PBX answering with a code the scenario does not list still wrote its CDR: count it, go on.
        failed=$((failed + 1))
        log "call to ${port} did not end as the scenario expected (see /tmp/caller.errors)"
    fi
done < <(grep -v -E '^[[:space:]]*(#|$)' "${CARRIERS_FILE}")
log "placed $((placed + failed)) calls (${failed} ended unexpectedly)"

if [[ -z "${CDR_FILE}" ]]; then
    log "no CDR_FILE: see the console for the annotations"
    exit 0
fi
want=$((before + placed + failed))
for ((i = 0; i < CDR_WAIT * 2; i++)); do
    (($(rows) >= want)) && break
    sleep 0.5
done
got=$(($(rows) - before))
log "${got} new CDR rows in ${CDR_FILE}"
fields='dst pbx_trunk pbx_dialstatus pbx_code pbx_phrase pbx_category pbx_retry pbx_reason'
printf '%s\n' "${fields// /$'\t'}"
tail -n "${got}" "${CDR_FILE}" \
    | jq -r --arg f "${fields}" '. as $row | [($f | split(" "))[] | ($row[.] // "" | tostring)] | @tsv' 2>/dev/null \
    || tail -n "${got}" "${CDR_FILE}"
((got >= placed + failed))
