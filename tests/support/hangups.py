"""Failed legs resolved by the real resolver: the annotations the console and store tests feed in."""
from __future__ import annotations

from itertools import count

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver

LIFECELL = "lifecell-trunk"

# A stored leg's identity is its PBX's leg id (and for Asterisk its call and channel): every hangup made here is
# its own leg unless the test names one, as every channel a PBX creates is.
_legs = count(2)


def resolved_hangup(resolver: Resolver, *, phrase: str | None, sip: str = "503", trunk: str = LIFECELL,
                    number: str = "+380441234567", call_id: str = "1700000000.1", leg_id: str | None = None,
                    pbx: str = "asterisk", timestamp: float | None = None, q850: int | None = None) -> Annotation:
    """One failed leg as an observer reports it, resolved through the shipped catalogs."""
    n = next(_legs)
    leg_id = leg_id or f"1700000000.{n}"
    return resolver.resolve(Observation(sip_code=sip, phrase=phrase, trunk=trunk, number=number, call_id=call_id,
                                        leg_id=leg_id, pbx=pbx, timestamp=timestamp, q850=q850,
                                        hangup_by=Side.CARRIER, channel=f"PJSIP/{trunk}-{n:08x}"))
