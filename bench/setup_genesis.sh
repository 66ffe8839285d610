#!/bin/sh
# The reference of bench/bench_esl.py: genesis (an asyncio FreeSWITCH ESL library) in a virtualenv of its own,
# bench/.venv-genesis (ignored by git), so its many dependencies never enter the project's environment. Same Python
# as the project's .venv: bench_esl.py imports genesis' reader from it into its own process.
#
#     sh bench/setup_genesis.sh            (again to rebuild it)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-$here/../.venv/bin/python}
version=2026.10.18  # pinned: the figures in the README were measured against this release
rm -rf "$here/.venv-genesis"
"$python" -m venv "$here/.venv-genesis"
"$here/.venv-genesis/bin/python" -m pip install --quiet --disable-pip-version-check "genesis==$version"
"$here/.venv-genesis/bin/python" -c "import genesis.protocol.reader_fsm; print('genesis', '$version', 'ready')"
