"""Recording annotations from a one-shot command (`replay --store`) the way the live listeners do: via the bus."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pbx_codes.cli.common import CliError
from pbx_codes.model import Annotation
from pbx_codes.sinks.bus import AnnotationBus


async def _record(url: str, annotations: Sequence[Annotation], instance: str | None = None) -> int:
    from pbx_codes.store import run_store

    bus = AnnotationBus(instance=instance)
    store = await run_store({}, bus, url=url)
    try:
        for i, ann in enumerate(annotations, 1):
            bus.publish(ann)
            if i % 1000 == 0:  # let the writer drain, so its bounded queue never drops a replayed hangup
                await asyncio.sleep(0)
                await store.flush()
        await store.flush()
    finally:
        await store.close()
    return len(annotations)


def record_annotations(url: str, annotations: Sequence[Annotation], instance: str | None = None) -> int:
    """Write `annotations` into the store at `url` as the agent `instance` saw them; returns how many."""
    try:
        return asyncio.run(_record(url, annotations, instance))
    except (OSError, ValueError) as exc:
        from pbx_codes.store.dsn import redact, safe_url
        raise CliError(f"store {safe_url(url)}: {redact(str(exc), url)}") from None
