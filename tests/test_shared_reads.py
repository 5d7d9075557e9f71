"""shared_reads.py: a fleet's replicas ask the cloud's catalogue once per run; failures are asked again."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

from orchestrator.actions import Action, Local, Result
from orchestrator.shared_reads import SHARED_READS, SharedReads, shared_read

PLANS = Local(("upctl", "server", "plans", "-o", "json"), "list plans")


def drive(gen: Generator[Action, Result, Result], answer: Result, asked: list[Action]) -> Result:
    """Run a read generator, answering each action it yields with ``answer``."""
    try:
        action = next(gen)
        while True:
            asked.append(action)
            action = gen.send(answer)
    except StopIteration as stop:
        assert isinstance(stop.value, Result)
        return stop.value


def test_the_second_replica_gets_the_first_ones_answer_without_asking() -> None:
    facts: dict[str, object] = {SHARED_READS: SharedReads()}
    asked: list[Action] = []
    first = drive(shared_read(facts, PLANS), Result(rc=0, stdout="[1]"), asked)
    second = drive(shared_read(facts, PLANS), Result(rc=0, stdout="[2]"), asked)
    assert asked == [PLANS] and first.stdout == second.stdout == "[1]"


def test_a_failed_read_is_asked_again_and_one_server_always_asks() -> None:
    facts: dict[str, object] = {SHARED_READS: SharedReads()}
    asked: list[Action] = []
    assert drive(shared_read(facts, PLANS), Result(rc=1, stderr="boom"), asked).rc == 1
    assert drive(shared_read(facts, PLANS), Result(rc=0, stdout="ok"), asked).stdout == "ok"
    assert len(asked) == 2
    alone: list[Action] = []  # no SharedReads in the facts: a single server's run
    drive(shared_read({}, PLANS), Result(rc=0), alone)
    drive(shared_read({}, PLANS), Result(rc=0), alone)
    assert alone == [PLANS, PLANS]


def test_concurrent_replicas_wait_for_the_first_answer() -> None:
    facts: dict[str, object] = {SHARED_READS: SharedReads()}
    asked: list[Action] = []
    results: list[Result] = []

    def slow_replica() -> None:
        gen = shared_read(facts, PLANS)
        action = next(gen)
        asked.append(action)
        time.sleep(0.2)  # the call takes a while; the others must wait, not ask too
        try:
            gen.send(Result(rc=0, stdout="catalogue"))
        except StopIteration as stop:
            results.append(stop.value)

    first = threading.Thread(target=slow_replica)
    first.start()
    time.sleep(0.05)
    others = [threading.Thread(target=lambda: results.append(drive(shared_read(facts, PLANS), Result(rc=9), asked)))
              for _ in range(3)]  # fmt: skip
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(5)
    assert asked == [PLANS] and [r.stdout for r in results] == ["catalogue"] * 4
