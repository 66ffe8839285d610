"""What Asterisk writes about a leg's end, read back: its cause descriptions (`ast_cause2str`, what
`${HANGUPCAUSE(<leg>,ast)}` answers) and its CDR dispositions / DIALSTATUS values.

The FastAGI write-back reads a leg's cause as this text, and CDR files keep it too; one table serves both. The
disposition tables serve the offline readers (enrich, backfill) of records that hold nothing better.
"""
from __future__ import annotations

from collections.abc import Mapping

from pbx_codes.model import Outcome

#: Asterisk's CDR dispositions -> the Q.850 cause each implies. FAILED implies none: Asterisk writes it for
#: CHANUNAVAIL, for CONGESTION without ``congestion=yes`` and for anything else that did not connect.
DISPOSITION_Q850: Mapping[str, int] = {"ANSWERED": 16, "BUSY": 17, "NO ANSWER": 19, "NOANSWER": 19,
                                       "CONGESTION": 34}
DISPOSITION_NO_CAUSE = frozenset({"FAILED"})
#: CDR dispositions / DIALSTATUS -> the outcome the live observer gives the same leg (where they say it alone).
DIAL_STATUS_OUTCOME: Mapping[str, Outcome] = {
    "ANSWER": Outcome.ANSWERED, "ANSWERED": Outcome.ANSWERED, "CANCEL": Outcome.CALLER_CANCEL,
    "NOANSWER": Outcome.RING_TIMEOUT, "NO ANSWER": Outcome.RING_TIMEOUT}

#: Asterisk's cause descriptions (``ast_cause2str``, what ``HANGUPCAUSE(<leg>,ast)`` answers) -> Q.850 cause.
ASTERISK_CAUSES: Mapping[str, int] = {
    "Unallocated (unassigned) number": 1, "No route to specified transmit network": 2,
    "No route to destination": 3, "Misdialed trunk prefix": 5, "Channel unacceptable": 6,
    "Call awarded and being delivered in an established channel": 7, "Pre-empted": 8,
    "Number ported elsewhere": 14, "Normal Clearing": 16, "User busy": 17, "No user responding": 18,
    "User alerting, no answer": 19, "Subscriber absent": 20, "Call Rejected": 21, "Number changed": 22,
    "Redirected to new destination": 23, "Answered elsewhere": 26, "Destination out of order": 27,
    "Invalid number format": 28, "Facility rejected": 29, "Response to STATus ENQuiry": 30,
    "Normal, unspecified": 31, "Circuit/channel congestion": 34, "Network out of order": 38,
    "Temporary failure": 41, "Switching equipment congestion": 42, "Access information discarded": 43,
    "Requested channel not available": 44, "Facility not subscribed": 50, "Outgoing call barred": 52,
    "Incoming call barred": 54, "Bearer capability not authorized": 57, "Bearer capability not available": 58,
    "Bearer capability not implemented": 65, "Channel not implemented": 66, "Facility not implemented": 69,
    "Invalid call reference value": 81, "Incompatible destination": 88, "Invalid message unspecified": 95,
    "Mandatory information element is missing": 96, "Message type nonexist.": 97, "Wrong message": 98,
    "Info. element nonexist or not implemented": 99, "Invalid information element contents": 100,
    "Message not compatible with call state": 101, "Recover on timer expiry": 102,
    "Mandatory IE length error": 103, "Protocol error, unspecified": 111, "Interworking, unspecified": 127,
}

_FOLDED = {text.lower(): cause for text, cause in ASTERISK_CAUSES.items()}


def asterisk_cause_q850(text: str | None) -> int | None:
    """The Q.850 cause Asterisk describes as `text` (case-insensitive), else None."""
    return _FOLDED.get(text.strip().lower()) if text else None
