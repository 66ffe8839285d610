#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: a real Asterisk 22 with sipp carriers answering
# with seed codes and phrases, pbx-codes annotating every failed call, and the annotated CDRs printed.
# Without root (no chroot) it falls back to catalog lookups of the same codes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pbx=.venv/bin/pbx-codes

calls=(
  "lifecell|503|Simultaneous calls limit reached"
  "lifecell|409|Not enough money"
  "lifecell|500|Service Unavailable. X-FWD-Original incorrect"
  "lifecell|486|Busy Here"
  "sipcall|403|Forbidden"
  "sipcall|480|Temporarily Unavailable"
)
if [ "$(id -u)" -eq 0 ] && $pbx bench --help >/dev/null 2>&1; then
  echo "== Real calls through Asterisk 22; the CDR rows it wrote, with pbx-codes' annotation =="
  for c in "${calls[@]}"; do
    IFS='|' read -r catalog code phrase <<<"$c"
    echo "-- carrier answers: $code $phrase (catalog $catalog)"
    $pbx bench call --pbx asterisk --code "$code" --phrase "$phrase" --catalog "$catalog" --json
  done
  echo "== Call shapes: a trunk nobody answers, a trunk qualify marked down, a ring nobody answered =="
  for shape in silent qualify-down ring-timeout; do
    echo "-- $shape"
    $pbx bench call --scenario "$shape"
  done
  echo "== Failover: carrier 1 answers 503, the shipped example dials carrier 2, which answers =="
  $pbx bench call --failover "503 Service Unavailable" "200 OK"
else
  echo "== (no root for the Asterisk chroot: showing catalog lookups instead) =="
  for c in "${calls[@]}"; do
    IFS='|' read -r catalog code phrase <<<"$c"
    $pbx lookup --catalog "$catalog" --lang uk "$code" "$phrase" || true
  done
fi
echo "== Provider codes =="
$pbx lookup --catalog mango --lang ru 2219 || true
$pbx lookup --catalog callback --lang ru 200/486 || true
$pbx lookup --catalog voipnow --method AssignPublicNo 200 || true
