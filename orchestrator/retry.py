"""One place that decides what is transient (worth retrying) and how retries back off."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import TypeVar

from orchestrator.errors import ConnectionLost, ProviderError, SSHError

T = TypeVar("T")

TRANSIENT_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def is_transient(exc: BaseException) -> bool:
    """True for failures that a later attempt can fix: booting hosts, resets, 5xx, timeouts.

    Never transient: bad credentials, quota, invalid plan, host-key mismatch, config errors.
    """
    if isinstance(exc, (ProviderError, SSHError)):
        return bool(getattr(exc, "transient", False))
    if isinstance(exc, (socket.timeout, TimeoutError, EOFError, ConnectionError)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in TRANSIENT_ERRNOS
    return False


RECONNECTS_PER_STEP = 3  # an SSH reset mid-step: reconnect and re-run the step, this often at most
RECONNECT_DEADLINE = 120.0  # seconds a reconnect keeps trying (sshd restarting, a NAT mapping renewed)


def reruns_after_reconnect(exc: BaseException) -> bool:
    """True when the step should be re-run on a new connection: an established SSH connection broke.

    Steps re-check what is done before doing it, so re-running one after a reset is safe.
    """
    return isinstance(exc, ConnectionLost)


def call_with_retries(
    fn: Callable[[], T],
    *,
    deadline: float,
    attempts: int | None = None,
    on_retry: Callable[[BaseException, int], None] | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Call ``fn`` until it succeeds, a non-transient error occurs, ``deadline`` seconds pass or attempts run out."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

    stop = stop_after_delay(deadline) if attempts is None else stop_after_delay(deadline) | stop_after_attempt(attempts)

    def before_sleep(state: object) -> None:
        if on_retry is not None:
            outcome = getattr(state, "outcome", None)
            exc = outcome.exception() if outcome is not None else None
            if exc is not None:
                on_retry(exc, int(getattr(state, "attempt_number", 0)))

    retrying = Retrying(
        stop=stop,
        wait=wait_exponential(multiplier=0.25, min=0.1, max=5),
        retry=retry_if_exception(retry_if),
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)
