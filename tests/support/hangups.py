"""Failed legs resolved by the real resolver: the annotations the console and store tests feed in."""
from __future__ import annotations

from pbx_codes.model import Annotation, Observation, Side
from pbx_codes.resolve import Resolver

LIFECELL = "lifecell-trunk"


def resolved_hangup(resolver: Resolver, *, phrase: str | None, sip: str = "503", trunk: str = LIFECELL,
                    number: str = "+380441234567", call_id: str = "1700000000.1", leg_id: str = "1700000000.2",
                    pbx: str = "asterisk", timestamp: float | None = None, q850: int | None = None) -> Annotation:
    """One failed leg as an observer reports it, resolved through the shipped catalogs."""
    return resolver.resolve(Observation(sip_code=sip, phrase=phrase, trunk=trunk, number=number, call_id=call_id,
                                        leg_id=leg_id, pbx=pbx, timestamp=timestamp, q850=q850,
                                        hangup_by=Side.CARRIER, channel=f"PJSIP/{trunk}-00000001"))
