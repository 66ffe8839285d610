"""Build script: the package's metadata lives in setup.cfg (and the build system in pyproject.toml); this file only
adds the optional compiled build.

The compiled build. By default (``pip install .``, ``pip install -e .``) pbx-codes is pure Python and needs neither
mypy nor a C compiler. With ``PBX_CODES_COMPILE=1`` in the environment the hot path of the Asterisk listener (the
AMI parser ``pbx_codes/protocols/ami.py`` and the Asterisk observer ``pbx_codes/observers/asterisk.py``, see
`HOT_MODULES`) is compiled to C extensions by mypyc, as black and mypy ship themselves; the build then needs mypy
(asked for as a build requirement on that path only), a C compiler and the Python headers (Debian: gcc,
python3-dev; scripts/setup.sh installs them). The ``.py`` sources are installed beside the extensions and stay the
fallback: the same code, so the compiled modules behave identically (tests/test_compiled.py replays every Asterisk
capture through both builds), only faster (bench/bench_ami.py measures both against panoramisk). Which one runs:
``pbx_codes.compiled.hot_modules_compiled()``, also shown by ``pbx-codes --version``.

    PBX_CODES_COMPILE=1 pip install .                      # a compiled wheel; build isolation fetches mypy
    PBX_CODES_COMPILE=1 pip wheel --no-deps --no-build-isolation . -w dist   # with mypy already installed

The generated C goes to ``build/``; the build takes 15-20 s on a 2-core machine. An editable install with
``PBX_CODES_COMPILE=1`` puts the extensions into the checkout (``pbx_codes/**/*.so`` and a top-level
``*__mypyc*.so``, ignored by git): they shadow the ``.py`` files until deleted.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup

#: The modules compiled by ``PBX_CODES_COMPILE=1``: the AMI parser and the Asterisk observer.
HOT_MODULES = ["pbx_codes/protocols/ami.py", "pbx_codes/observers/asterisk.py"]
#: The mypy that compiles them (the one the tests type-check with).
MYPY_REQUIREMENT = "mypy>=2.4,<2.5"
#: Commands that only write metadata: pip's build frontend asks for the build requirements with them.
_METADATA_ONLY = {"egg_info", "dist_info", "--version", "--name"}


def _compiled_build() -> dict[str, Any]:
    if os.environ.get("PBX_CODES_COMPILE", "").strip() != "1":
        return {}
    try:
        from mypyc.build import mypycify
    except ImportError:
        if set(sys.argv[1:]) & _METADATA_ONLY and not {"build", "build_ext", "bdist_wheel"} & set(sys.argv[1:]):
            # The build frontend asks what the build needs first: mypy (it is installed before the real build).
            return {"setup_requires": [MYPY_REQUIREMENT]}
        raise SystemExit(f"PBX_CODES_COMPILE=1: the compiled build needs mypy ({MYPY_REQUIREMENT}) installed") from None
    return {"ext_modules": mypycify(HOT_MODULES, opt_level="3"),  # the C it writes goes to build/
            "setup_requires": [MYPY_REQUIREMENT]}


setup(**_compiled_build())
