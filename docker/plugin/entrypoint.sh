#!/usr/bin/env bash
# Starts pbx-codes in the compose bench. The store's PostgreSQL password is a compose secret file, readable by
# every user of the container (0644, as compose mounts it); libpq only reads a password file private to its user,
# so the first line goes into ~/.pgpass (0600), where libpq finds it. Then pbx-codes, with the arguments given.
set -euo pipefail

SECRET_FILE="${PBX_CODES_STORE_PASSWORD_FILE:-/run/secrets/store_password}"

if [[ -r "${SECRET_FILE}" ]]; then
    password="$(head -n 1 "${SECRET_FILE}")"
    password="${password%$'\r'}"
    # A .pgpass line escapes ":" and "\" with a backslash.
    password="${password//\\/\\\\}"
    password="${password//:/\\:}"
    (umask 077 && printf '*:*:*:*:%s\n' "${password}" >"${HOME}/.pgpass")
    unset password
fi

exec pbx-codes "$@"
