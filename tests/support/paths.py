"""Where the tests' data lives: recorded PBX captures in the repository, provider documents beside it."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Byte-exact captures from real PBXs (each folder has its README): part of the project, so a clone anywhere tests.
FIXTURES = REPO / "tests" / "fixtures"
#: The provider documents (ground truth) sit beside the repository; only the seed comparisons read them.
SEEDS = REPO.parent / "shared" / "seeds"


def captures(folder: Path, pattern: str) -> list[Path]:
    """The recorded captures in ``folder`` matching ``pattern``, sorted; none is an error, never an empty list that
    would make the tests over them vanish."""
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no recorded captures {pattern} in {folder} (they ship with the repository)")
    return found
