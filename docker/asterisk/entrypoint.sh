#!/usr/bin/env bash
# Starts Asterisk in the compose bench: puts the AMI secret (a compose secret file) where manager.conf includes
# it, then runs Asterisk in the foreground as its own user.
set -euo pipefail

SECRET_FILE="${PBX_CODES_AMI_SECRET_FILE:-/run/secrets/ami_secret}"
OUT_DIR=/run/pbx-codes
RUN_USER="${PBX_CODES_ASTERISK_USER:-asterisk}"

die() { printf '[asterisk-entrypoint] error: %s\n' "$*" >&2; exit 1; }

[[ -r "${SECRET_FILE}" ]] || die "no AMI secret at ${SECRET_FILE} (run docker/make-secrets.sh)"
secret="$(head -n 1 "${SECRET_FILE}")"
secret="${secret%$'\r'}"
# An Asterisk config value ends at ";" and is trimmed: allow only characters that survive unchanged.
[[ "${secret}" =~ ^[A-Za-z0-9._~+/=-]{16,256}$ ]] \
    || die "the AMI secret must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - (run docker/make-secrets.sh)"

mkdir -p "${OUT_DIR}"
(umask 077 && printf 'secret = %s\n' "${secret}" >"${OUT_DIR}/ami-secret.conf")
chown "${RUN_USER}:" "${OUT_DIR}/ami-secret.conf"
unset secret

# The CDR files are read from the asterisk-cdr volume by other containers of the bench (the caller, the plugin's
# backfill), which run as their own users.
umask 022
chmod 0644 /var/log/asterisk/cdr-custom/*.csv /var/log/asterisk/cdr-custom/*.json 2>/dev/null || true

exec /usr/sbin/asterisk -f -U "${RUN_USER}" -G "${RUN_USER}" -vvv "$@"
