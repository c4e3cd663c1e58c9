"""What the SSM hook keeps secret, and how: its own scrubbing, Airflow's masker, and a filter on urllib3's logs.

Two kinds of secrets, handled differently on purpose:

* **API keys and session keys**: a handful per run. They are registered with Airflow's secrets masker, so any
  log line that quotes one (ours or a library's) shows ``***``.
* **Upload locators**: one per picture, each authorising an upload by itself like a pre-signed URL. They are
  *not* given to Airflow's masker: its ``add_mask`` recompiles one regular expression of every secret so far,
  so registering thousands of locators made a run quadratic and every later log line paid for the giant
  pattern. Instead the hook scrubs its recent locators from every message it produces, never logs them, and
  while an upload is in flight :class:`LocatorLogFilter` scrubs it from urllib3's records, the only other code
  that sees the URL (its DEBUG line ``"PUT /upload/... HTTP/1.1" 200`` and its retry messages).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from requests.utils import requote_uri

__all__ = ["URLLIB3_LOGGERS", "HookSecrets", "LocatorLogFilter", "locator_log_filter", "locator_variants"]

log = logging.getLogger(__name__)

MASK = "***"

#: urllib3's loggers that can print a request URL (debug lines, retries, redirects, header warnings).
URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


def locator_variants(locator: str, target: str) -> set[str]:
    """Every spelling of an upload locator that can show up in text.

    The locator as the API gave it, the absolute URL called, that URL as ``requests`` re-quotes it, and its path
    with the query string (what urllib3 logs and puts in its connection errors).
    """
    variants = {locator, target, requote_uri(target)}
    for url in (target, requote_uri(target)):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if path not in ("", "/"):
            variants.add(path)
    return {v for v in variants if v}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:  # longest first, so a URL goes whole before its path could match inside it
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _longest_first(values: set[str]) -> tuple[str, ...]:
    return tuple(sorted(values, key=len, reverse=True))


class LocatorLogFilter(logging.Filter):
    """Scrub the upload locators in flight from log records; one instance serves every hook in the process."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()  # several hooks may upload at once
        self._ordered: tuple[str, ...] = ()

    def add(self, variants: set[str]) -> None:
        """Start scrubbing ``variants``."""
        with self._lock:
            self._active.update(variants)
            self._ordered = _longest_first(set(self._active))

    def discard(self, variants: set[str]) -> None:
        """Stop scrubbing ``variants`` (once every upload that added them is over)."""
        with self._lock:
            self._active.subtract(variants)
            self._active = +self._active  # drop the counts that reached zero
            self._ordered = _longest_first(set(self._active))

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a record that mentions a locator in flight; never drop a record."""
        secrets = self._ordered
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not a reason to lose it here
            return True
        scrubbed = _scrub(message, secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True

    def install(self) -> None:
        """Attach the filter to urllib3's loggers (again, if a logging configuration replaced their filters)."""
        for name in URLLIB3_LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)


_LOCATOR_FILTER = LocatorLogFilter()


def locator_log_filter() -> LocatorLogFilter:
    """The process-wide filter on urllib3's loggers."""
    return _LOCATOR_FILTER


class HookSecrets:
    """The secrets one hook knows: what its :meth:`scrub` removes and what Airflow's masker is told.

    Args:
        recent_locators: how many upload locators :meth:`scrub` keeps removing after their upload. A locator is
            spent once its bytes are sent, so only the last few can still appear in a message; a bound keeps
            scrubbing cheap however many pictures a run uploads.
    """

    def __init__(self, recent_locators: int = 64) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._locators: deque[frozenset[str]] = deque(maxlen=recent_locators)
        self._ordered: tuple[str, ...] = ()

    def register(self, value: str | None) -> None:
        """Remember an API key or session key and register it with Airflow's masker (a handful per run)."""
        if not value or value in self._keys:
            return
        with self._lock:
            self._keys.add(value)
            self._reorder()
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(value)
        except Exception:  # masking is best effort outside a task; our own scrubbing still applies
            log.debug("could not register a secret with Airflow's masker")

    @contextmanager
    def upload_locator(self, locator: str, target: str) -> Iterator[None]:
        """Keep an upload locator secret while the upload runs, without Airflow's masker.

        :meth:`scrub` removes it from now on (until ``recent_locators`` newer ones replace it), and urllib3's
        log records are scrubbed of it until the block ends.
        """
        variants = locator_variants(locator, target)
        with self._lock:
            self._locators.append(frozenset(variants))
            self._reorder()
        log_filter = locator_log_filter()
        log_filter.install()
        log_filter.add(variants)
        try:
            yield
        finally:
            log_filter.discard(variants)

    def scrub(self, text: str) -> str:
        """Replace every key, session key and recent upload locator in ``text`` with ``***``."""
        return _scrub(text, self._ordered)

    def _reorder(self) -> None:
        self._ordered = _longest_first(self._keys.union(*self._locators))
