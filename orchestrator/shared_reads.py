"""Cloud reads that one run makes once, however many servers it deploys.

A fleet's replicas all ask the cloud the same questions before they create their servers: the plans, the zones,
the GPU stock, the OS templates, and the server listing that shows whether a server of this name exists
already. Within one run the answers are the same for every replica (the listing is taken before this run's
creates, and each replica looks only for its own hostname, which no other replica creates), so the first replica
to ask makes the call and the others reuse its answer: 8 replicas make 5 such calls, not 40, which keeps a
shared account's API rate limit for the calls that matter.

A dry run shares the same way, so its plan shows each read once, as the real run makes it. One server (no
fleet) has no SharedReads in its facts and reads as before. A failed read is not kept: the next replica asks
again. Concurrent replicas asking the same question wait for the first one's answer (one lock per question,
held while the call runs, released when the step's generator ends however it ends).
"""

from __future__ import annotations

import threading
from collections.abc import Generator

from orchestrator.actions import Action, Local, Result

SHARED_READS = "shared_reads"  # ctx.facts key: the run's SharedReads (fleet.py puts one there)


class SharedReads:
    def __init__(self) -> None:
        self._answers: dict[tuple[str, ...], Result] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, action: Local) -> Generator[Action, Result, Result]:
        """The answer to ``action`` (a read: it must not change the cloud), asked once per run."""
        assert not action.mutates, f"only reads are shared: {action.describe()}"
        with self._guard:
            lock = self._locks.setdefault(action.argv, threading.Lock())
        with lock:
            kept = self._answers.get(action.argv)
            if kept is not None:
                return kept
            result = yield action
            if not result.known or result.rc == 0:
                self._answers[action.argv] = result
            return result

    @property
    def asked(self) -> int:
        """How many distinct reads were answered (for tests)."""
        return len(self._answers)


def shared_read(facts: dict[str, object], action: Local) -> Generator[Action, Result, Result]:
    """``action``'s result: from the run's SharedReads when the run has one, else by asking."""
    reads = facts.get(SHARED_READS)
    if isinstance(reads, SharedReads):
        return (yield from reads.read(action))
    return (yield action)
