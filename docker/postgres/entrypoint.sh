#!/usr/bin/env bash
# PostgreSQL for the compose bench's store. At first start (an empty PGDATA) it makes the cluster, the role
# "pbxcodes" with the password of the compose secret store_password, and the database "pbxcodes" it owns; then it
# runs the server in the foreground on the bench network. The password goes from the file to the server through
# psql's \set with a backquoted command: it is on no command line and in no environment.
set -euo pipefail

SECRET_FILE="${PBX_CODES_STORE_PASSWORD_FILE:-/run/secrets/store_password}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
SOCKET_DIR=/run/postgresql

log() { printf '[postgres-entrypoint] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

bin_dir="$(dirname "$(find /usr/lib/postgresql -path '*/bin/postgres' | sort -V | tail -n 1)")"
[[ -x "${bin_dir}/postgres" ]] || die "no PostgreSQL server under /usr/lib/postgresql"
[[ -r "${SECRET_FILE}" ]] || die "no store password at ${SECRET_FILE} (run docker/make-secrets.sh)"

if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
    log "making the cluster in ${PGDATA}"
    "${bin_dir}/initdb" -D "${PGDATA}" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer \
        --auth-host=scram-sha-256 >/dev/null
    printf '%s\n' "listen_addresses = '*'" "unix_socket_directories = '${SOCKET_DIR}'" >>"${PGDATA}/postgresql.conf"
    # Anyone on the bench network with the password; the local socket for this container's postgres user only.
    printf '%s\n' "local all postgres peer" "host pbxcodes pbxcodes all scram-sha-256" >"${PGDATA}/pg_hba.conf"
    "${bin_dir}/pg_ctl" -D "${PGDATA}" -o "-c listen_addresses=''" -w start >/dev/null
    PBX_CODES_STORE_PASSWORD_FILE="${SECRET_FILE}" "${bin_dir}/psql" -h "${SOCKET_DIR}" -U postgres -q \
        -v ON_ERROR_STOP=1 -d postgres <<'SQL'
\set password `head -n 1 "$PBX_CODES_STORE_PASSWORD_FILE" | tr -d '\r\n'`
CREATE ROLE pbxcodes LOGIN PASSWORD :'password';
CREATE DATABASE pbxcodes OWNER pbxcodes;
SQL
    "${bin_dir}/pg_ctl" -D "${PGDATA}" -m fast -w stop >/dev/null
fi

exec "${bin_dir}/postgres" -D "${PGDATA}"
