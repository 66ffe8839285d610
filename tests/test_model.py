"""`Observation` is built by the ``__init__`` `_direct_init` writes (fields stored straight into the instance's
``__dict__``, not through the frozen class's ``object.__setattr__``): these prove it behaves as the one `dataclass`
would have written, and that the class stays frozen."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle

import pytest

from pbx_codes.model import Observation, Outcome, Side, _direct_init

FIELDS = dataclasses.fields(Observation)
#: What `dataclass(frozen=True)` alone makes of the same fields: the reference the direct ``__init__`` must match.
Reference = dataclasses.make_dataclass(
    "Observation", [(f.name, f.type, dataclasses.field(default=f.default)) for f in FIELDS], frozen=True)
VALUES = ("486", "Busy Here", 17, "x-1", "INVITE", "lifecell", "trunk", Side.CARRIER, "asterisk", "c.1", "l.2",
          "PJSIP/trunk-00000001", "0501234567", "BUSY", 1.5, Outcome.CARRIER_FINAL, False, 2, "USER_BUSY", 1.0, 1.25,
          None, 1.5, "agent-1")


def test_the_init_has_the_dataclass_signature() -> None:
    ours, theirs = inspect.signature(Observation), inspect.signature(Reference)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
           [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    assert [p.annotation for p in ours.parameters.values()] == [f.type for f in FIELDS]


@pytest.mark.parametrize("how", ["positional", "keywords", "defaults", "some"])
def test_the_init_stores_what_the_dataclass_one_stores(how: str) -> None:
    assert len(VALUES) == len(FIELDS)
    kwargs = dict(zip([f.name for f in FIELDS], VALUES))
    if how == "positional":
        ours, theirs = Observation(*VALUES), Reference(*VALUES)
    elif how == "keywords":
        ours, theirs = Observation(**kwargs), Reference(**kwargs)
    elif how == "defaults":
        ours, theirs = Observation(), Reference()
    else:
        ours, theirs = Observation("503", q850=34, certain=False), Reference("503", q850=34, certain=False)
    assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
    assert vars(ours) == dataclasses.asdict(theirs)
    assert repr(ours) == repr(theirs)


def test_the_init_refuses_what_the_dataclass_one_refuses() -> None:
    with pytest.raises(TypeError):
        Observation(*VALUES, "one too many")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Observation(no_such_field=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Observation("486", sip_code="486")  # type: ignore[misc]


def test_an_observation_stays_frozen() -> None:
    obs = Observation("486", hangup_by=Side.CARRIER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.sip_code = "603"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del obs.phrase
    assert obs.sip_code == "486"


def test_equality_hash_replace_copy_and_pickle_are_the_dataclass_ones() -> None:
    obs = Observation(*VALUES)
    twin = Observation(**dataclasses.asdict(obs))
    assert obs == twin and hash(obs) == hash(twin) == hash(Reference(*VALUES))
    assert obs != dataclasses.replace(obs, phrase="Declined")
    assert dataclasses.replace(obs, phrase="Declined").phrase == "Declined"
    for clone in (copy.copy(obs), copy.deepcopy(obs), pickle.loads(pickle.dumps(obs))):
        assert clone == obs and type(clone) is Observation
    assert {obs, twin} == {obs}


def test_direct_init_refuses_a_class_it_cannot_mirror() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int = 0

    @dataclasses.dataclass(frozen=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class Post:
        a: int = 0

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Required:
        a: int

    for cls in (Slotted, Factory, Post, Required):
        with pytest.raises(TypeError):
            _direct_init(cls)
