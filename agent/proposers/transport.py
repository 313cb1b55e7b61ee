"""Calling an LLM endpoint: retries, backoff, Retry-After. Wire formats live elsewhere.

The SDKs' own retries are switched off (max_retries=0) so attempts do not multiply; here a
call is retried on connection errors and timeouts, 408, 409, 429 and 5xx, with exponential
backoff and full jitter, waiting what the server asks for in Retry-After (or
retry-after-ms) when it says. Every retry is reported to `on_retry` for the transcript.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

T = TypeVar("T")
_RETRY_STATUS = {408, 409, 429}


def unreachable(url: str, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers HTTP at `url` (connection refused, unknown host, no answer in
    time), or None when something does, whatever its status: a 404 or a 401 from the
    server still says it is there."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return None
    except urllib.error.HTTPError:  # an answer, if not a happy one
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, no host, timeout
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: no answer at all, or a status the server may not repeat."""
    status = status_of(exc)
    if status is not None:
        return status in _RETRY_STATUS or status >= 500
    # Connection errors and timeouts of both SDKs; their class names are the same.
    return any(cls.__name__ == "APIConnectionError" for cls in type(exc).__mro__)


def timed_out(exc: BaseException) -> bool:
    """No answer within the client's timeout (APITimeoutError of either SDK)."""
    return any(cls.__name__ == "APITimeoutError" for cls in type(exc).__mro__)


def retry_after_seconds(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    if milliseconds := headers.get("retry-after-ms"):
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class _Wait:
    """Retry-After when the server gives one (capped), else exponential backoff with jitter."""

    def __init__(self, backoff_s: float, max_wait_s: float):
        self.backoff = wait_random_exponential(multiplier=backoff_s, max=max_wait_s)
        self.max_wait_s = max_wait_s

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after_seconds(exc) if exc is not None else None
        return min(asked, self.max_wait_s) if asked is not None else self.backoff(state)


def call_with_retries(
    call: Callable[[], T],
    retries: int,
    backoff_s: float,
    max_wait_s: float,
    on_retry: Callable[[dict[str, Any]], None] = lambda event: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    def report(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        on_retry(
            {
                "attempt": state.attempt_number,
                "error": f"{type(exc).__name__}: {exc}",
                "status": status_of(exc) if exc else None,
                "timed_out": exc is not None and timed_out(exc),
                "wait_s": round(state.upcoming_sleep, 3),
            }
        )

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=_Wait(backoff_s, max_wait_s),
        retry=retry_if_exception(is_transient),
        before_sleep=report,
        reraise=True,
        sleep=sleep,
    )
    return retrying(call)
