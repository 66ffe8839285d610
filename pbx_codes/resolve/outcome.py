"""How a leg ended refines what the catalogs say about its code.

The catalogs describe a code as a carrier means it. When the observer knows more about the leg than the code, this
table is where that knowledge changes the answer, once for both PBXs:

- an unreachable trunk (no INVITE got an answer, a qualify marked it down, the gateway is down) is a network or
  availability failure worth another route now (``failover``), whatever code the PBX made up for it;
- a response the PBX made itself or a timer (no final answer came from the carrier) is the same: the trunk did
  not answer, so try another route;
- a limit of the PBX's own is capacity, and another route (or a later attempt) can work;
- a ring that the dial timer ended is ``no_answer``, never ``ok``;
- a caller's cancel is ``cancelled`` and the caller's doing.

A rule leaves a field as the catalog says when it has nothing better (``None``). A leg with no code any catalog
knows (a gateway FreeSWITCH marked down, a call its own throttle refused: no SIP response at all) gets the outcome's
own reason text instead of "unknown".
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from pbx_codes.model import Category, Outcome, Resolution, Retry, Side

#: outcome -> (category, retry, fault); None keeps the catalog's value.
OUTCOME_RULES: Mapping[Outcome, tuple[Category | None, Retry | None, Side | None]] = MappingProxyType({
    Outcome.UNREACHABLE: (Category.NETWORK, Retry.FAILOVER, Side.CARRIER),
    Outcome.LOCAL_RESPONSE: (Category.NETWORK, Retry.FAILOVER, Side.CARRIER),
    Outcome.PBX_LIMIT: (Category.CAPACITY, Retry.FAILOVER, Side.LOCAL),
    Outcome.RING_TIMEOUT: (Category.NO_ANSWER, Retry.LATER, Side.CALLEE),
    Outcome.CALLER_CANCEL: (Category.CANCELLED, Retry.NO, Side.CALLER),
})

#: The reason of a leg no catalog explains, told by its outcome alone.
OUTCOME_TEXTS: Mapping[Outcome, Mapping[str, str]] = MappingProxyType({
    Outcome.UNREACHABLE: MappingProxyType({
        "uk": "Оператора не вдалося досягти: жодна спроба виклику до нього не дійшла (шлюз недоступний або немає "
              "маршруту); інший маршрут може спрацювати.",
        "ru": "Оператор недоступен: ни одна попытка вызова до него не дошла (шлюз недоступен или нет маршрута); "
              "другой маршрут может сработать.",
        "en": "The carrier could not be reached: no call attempt got through to it (gateway down or no route); "
              "another route may work."}),
    Outcome.PBX_LIMIT: MappingProxyType({
        "uk": "Власне обмеження АТС (викликів за секунду чи каналів) відхилило виклик, перш ніж він дійшов до "
              "оператора.",
        "ru": "Собственное ограничение АТС (вызовов в секунду или каналов) отклонило вызов до того, как он дошёл до "
              "оператора.",
        "en": "A limit of the PBX itself (calls per second or channels) refused the call before it reached a "
              "carrier."}),
    Outcome.LOCAL_RESPONSE: MappingProxyType({
        "uk": "Від оператора не надійшло відповіді: АТС сама завершила спробу (таймер або помилка передачі).",
        "ru": "От оператора не пришло ответа: АТС сама завершила попытку (таймер или ошибка передачи).",
        "en": "No answer came from the carrier: the PBX ended the attempt itself (a timer or a transport error)."}),
    Outcome.RING_TIMEOUT: MappingProxyType({
        "uk": "Абонента було викликано, але він не відповів до закінчення часу набору.",
        "ru": "Абоненту поступил вызов, но он не ответил до истечения времени набора.",
        "en": "The callee was alerted but did not answer before the dial timer ran out."}),
    Outcome.CALLER_CANCEL: MappingProxyType({
        "uk": "Абонент, що телефонував, поклав слухавку до відповіді.",
        "ru": "Звонящий положил трубку до ответа.",
        "en": "The caller hung up before the call was answered."}),
})

#: Categories an unreachable trunk keeps as the catalog says (they already name a network or availability failure).
_UNREACHABLE_KEEPS = frozenset({Category.NETWORK, Category.UNAVAILABLE})


def refine(resolution: Resolution, outcome: Outcome | None) -> Resolution:
    """The resolution with the outcome's rule applied (the same object when the rule changes nothing)."""
    if outcome is None:
        return resolution
    rule = OUTCOME_RULES.get(outcome)
    if rule is None:
        return resolution
    category, retry, fault = rule
    if outcome in (Outcome.UNREACHABLE, Outcome.LOCAL_RESPONSE) and resolution.category in _UNREACHABLE_KEEPS:
        category = None
    changes: dict[str, object] = {}
    if category is not None and category is not resolution.category:
        changes["category"] = category
    if retry is not None and retry is not resolution.retry:
        changes["retry"] = retry
    if fault is not None and fault is not resolution.fault:
        changes["fault"] = fault
    if resolution.match_kind == "none" and outcome in OUTCOME_TEXTS:
        changes["texts"] = OUTCOME_TEXTS[outcome]
    return replace(resolution, **changes) if changes else resolution  # type: ignore[arg-type]


__all__ = ["OUTCOME_RULES", "OUTCOME_TEXTS", "refine"]
