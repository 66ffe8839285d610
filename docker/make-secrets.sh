#!/usr/bin/env bash
# Creates the compose bench's secret files (docker/secrets/), each a random 64-hex-digit value, keeping any that
# exist. The directory is private to you (0700); the files are 0644 inside it because compose bind-mounts them
# into containers whose services run as their own non-root users, who must be able to read them.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "${dir}"
chmod 0700 "${dir}"
for name in ami_secret esl_password console_token store_password; do
    file="${dir}/${name}"
    if [[ -s "${file}" ]]; then
        echo "keeping ${file}"
        continue
    fi
    (umask 022; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"${file}"; echo >>"${file}")
    echo "created ${file}"
done
echo "console: open http://127.0.0.1:8088/?token=TOKEN once, with TOKEN the line in ${dir}/console_token"
