"""Annotated seizures for the quality tests: a leg on a trunk with its outcome, SIP code and timings."""
from __future__ import annotations

from pbx_codes.model import Annotation, Category, Observation, Outcome, Resolution, Retry

_RETRY = {"ok": Retry.NO, "busy": Retry.LATER}


def seizure(trunk: str, category: str, sip: str, *, start: float = 1_000_000.0, pdd: float | None = None,
            answer_after: float | None = None, talk: float | None = None, end_after: float = 1.0,
            pbx: str = "asterisk", attempt: int | None = 1, outcome: Outcome | None = None, leg: str = "",
            phrase: str | None = None, catalog: str = "sip") -> Annotation:
    """One leg that started at `start`: ringing after `pdd` s, answered after `answer_after` s and talked `talk` s,
    or ended after `end_after` s."""
    answered = start + answer_after if answer_after is not None else None
    ended = answered + (talk or 0.0) if answered is not None else start + end_after
    obs = Observation(sip_code=sip, phrase=phrase, trunk=trunk, pbx=pbx, call_id=f"call-{leg}", leg_id=leg or None,
                      timestamp=ended, attempt=attempt, outcome=outcome, started_at=start,
                      progress_at=start + pdd if pdd is not None else None, answered_at=answered, ended_at=ended)
    res = Resolution(catalog=catalog, code=sip, phrase=phrase, matched=sip, exact=True, match_kind="code",
                     category=Category(category), retry=_RETRY.get(category, Retry.FAILOVER), fault=None, sip=sip,
                     q850=None)
    return Annotation(res, obs)


def mix(trunk: str = "lifecell", start: float = 1_000_000.0, pbx: str = "asterisk") -> list[Annotation]:
    """Ten seizures: 4 answered (talk 10, 20, 30, 40 s), busy, no answer, 409 out of money, two 503s, one 404.
    PDD 1..10 s (the n-th seizure rang after n seconds, the 503s and the 404 never rang)."""
    t = start
    return [
        seizure(trunk, "ok", "200", start=t, pdd=1.0, answer_after=3.0, talk=10.0, leg=f"{trunk}-a1", pbx=pbx),
        seizure(trunk, "ok", "200", start=t, pdd=2.0, answer_after=4.0, talk=20.0, leg=f"{trunk}-a2", pbx=pbx),
        seizure(trunk, "ok", "200", start=t, pdd=3.0, answer_after=5.0, talk=30.0, leg=f"{trunk}-a3", pbx=pbx),
        seizure(trunk, "ok", "200", start=t, pdd=4.0, answer_after=6.0, talk=40.0, leg=f"{trunk}-a4", pbx=pbx),
        seizure(trunk, "busy", "486", start=t, pdd=5.0, end_after=6.0, leg=f"{trunk}-b1", pbx=pbx),
        seizure(trunk, "no_answer", "480", start=t, pdd=6.0, end_after=30.0, leg=f"{trunk}-n1", pbx=pbx,
                outcome=Outcome.RING_TIMEOUT),
        seizure(trunk, "billing", "409", start=t, end_after=0.5, leg=f"{trunk}-m1", pbx=pbx, phrase="Not enough money",
                catalog="lifecell"),
        seizure(trunk, "capacity", "503", start=t, end_after=0.25, leg=f"{trunk}-c1", pbx=pbx),
        seizure(trunk, "capacity", "503", start=t, end_after=0.75, leg=f"{trunk}-c2", pbx=pbx),
        seizure(trunk, "invalid_number", "404", start=t, end_after=0.1, leg=f"{trunk}-i1", pbx=pbx),
    ]


#: The mix's measures, by hand: 10 seizures, 4 answered; NER counts answered 4 + busy + no answer + 404 = 7;
#: SEER counts 200 x4 + 486 = 5 (the unanswered call ended by the dial timer: its CANCEL got 487, not 480); ISA
#: counts the two 503s; PDD over the six that rang (or answered):
#: 1, 2, 3, 4, 5, 6 s; ACD (10 + 20 + 30 + 40) / 4 = 25 s.
MIX_EXPECTED = {"seizures": 10, "answered": 4, "asr": 0.4, "ner": 0.7, "ser": 0.4, "seer": 0.5, "isa": 0.2,
                "pdd_p50_ms": 3500.0, "pdd_p95_ms": 5750.0, "acd_s": 25.0}
