"""Many runs racing for one deploy lock, for real: forked processes released together by a barrier, each
alive until all have tried (so that no holder looks gone), and exactly one of them may hold the lock."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable

from ansible.module_utils.smart_deploy.common import utc_now
from ansible.module_utils.smart_deploy.lock import REFUSED, TAKEN, TAKEN_OVER, acquire, create, local_identity, new_lock

RUNS = 200
ROUNDS = 20
TTL = 3600

# What a contender reports through its exit code.
HOLDS = 0
REFUSED_CODE = 3
BROKEN = 1  # the attempt raised

Attempt = Callable[[str, str], bool]  # (lock path, lock id) -> True when this run now holds the lock


def _contender(index: int, attempt: Attempt, path: str, rounds: int, start, done, results) -> None:
    """One run per round: wait for the others, try to take the lock, stay alive until every run has tried."""
    code = 0
    try:
        for round_no in range(rounds):
            start.wait(60)
            try:
                results[index] = HOLDS if attempt(path, "r%d-%d" % (round_no, index)) else REFUSED_CODE
            except BaseException:
                results[index] = BROKEN
            done.wait(60)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def race(attempt: Attempt, path: str, rounds: int, check: Callable[[int, list[int]], None], prepare=None, runs: int = RUNS) -> None:
    """``runs`` forked processes call ``attempt`` at once, ``rounds`` times in a row; after each round
    ``check(round_no, exit codes)`` runs while every contender (and so the holder) is still alive.
    ``prepare(round_no)`` sets the lock up before a round. The processes are forked once: forking
    200 processes for each round would take most of the time this test may take."""
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Barrier(runs + 1), ctx.Barrier(runs + 1)  # the contenders, and this process
    results = ctx.Array("i", runs, lock=False)
    procs = [ctx.Process(target=_contender, args=(i, attempt, path, rounds, start, done, results), daemon=True) for i in range(runs)]
    for proc in procs:
        proc.start()
    try:
        for round_no in range(rounds):
            results[:] = [-1] * runs
            if prepare:
                prepare(round_no)
            start.wait(60)
            done.wait(60)
            check(round_no, list(results))
    finally:
        start.abort()
        done.abort()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def take(path: str, lock_id: str) -> bool:
    """One run of this code base taking the lock, as deploy_lock does."""
    identity = local_identity()
    lock = new_lock(lock_id, "pytest", "here", os.getpid(), "r1", "deploy", utc_now(), TTL, identity)
    return acquire(path, lock, TTL, identity).outcome in (TAKEN, TAKEN_OVER)


def holders(codes: list[int]) -> list[int]:
    assert set(codes) <= {HOLDS, REFUSED_CODE}, "a contender failed: %s" % codes
    return [i for i, code in enumerate(codes) if code == HOLDS]


def test_of_200_runs_started_together_exactly_one_holds_the_lock_20_times_in_a_row(tmp_path):
    path = tmp_path / "deploy.lock"

    def check(round_no: int, codes: list[int]) -> None:
        winners = holders(codes)
        assert len(winners) == 1, "round %d: %d runs hold the lock" % (round_no, len(winners))
        assert '"lock_id": "r%d-%d"' % (round_no, winners[0]) in path.read_text()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.lock"], "temporary files left"
        path.unlink()

    started = time.monotonic()
    race(take, str(path), ROUNDS, check)
    assert time.monotonic() - started < 60


def take_refused_only_by_a_live_holder(path: str, lock_id: str) -> bool:
    identity = local_identity()
    lock = new_lock(lock_id, "pytest", "here", os.getpid(), "r1", "deploy", utc_now(), TTL, identity)
    outcome = acquire(path, lock, TTL, identity)
    if outcome.outcome == REFUSED and outcome.lock.get("lock_id") == "ghost":
        raise AssertionError("refused because of the stale lock itself: %s" % outcome.reason)
    return outcome.outcome in (TAKEN, TAKEN_OVER)


def test_of_200_runs_finding_a_stale_lock_exactly_one_takes_it_over(tmp_path):
    path = tmp_path / "deploy.lock"

    def prepare(round_no: int) -> None:
        ghost = subprocess.Popen([sys.executable, "-c", "pass"])
        ghost.wait()
        assert create(str(path), new_lock("ghost", "ghost", "here", ghost.pid, "r0", "deploy", utc_now(), TTL, local_identity()))

    def check(round_no: int, codes: list[int]) -> None:
        winners = holders(codes)
        assert len(winners) == 1, "round %d: %d runs hold the lock" % (round_no, len(winners))
        assert '"lock_id": "r%d-%d"' % (round_no, winners[0]) in path.read_text()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.lock"], "temporary files left"
        path.unlink()

    race(take_refused_only_by_a_live_holder, str(path), 5, check, prepare)
