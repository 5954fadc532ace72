"""MLflow adapter: the champion ``models:/<name>@<alias>``, loaded at start and followed by polling.

A new version is downloaded (once: the model package caches versions locally), checked against the
feature definitions, warmed up, and only then swapped in, by replacing one reference: a request
holds the ``Champion`` it started with, so it never sees a half-loaded model. The version served
last is remembered next to the cache; when the registry is unreachable at start, that version is
served from the cache while polling goes on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clinops_scorer.core import Champion, champion

# MLflow's client retries a dead server for minutes by default; a poller wants a quick answer.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _safe(part: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in part)


class IncompatibleModel(RuntimeError):
    """A registered version the scorer must not serve (its views' schemas differ from the code's)."""


def load_champion(tracking_uri: str, name: str, version: str, cache_dir: Path | None) -> Champion:
    from clinops_common.model import load_version, service_schema_ids

    package = load_version(tracking_uri, name, version, cache_dir)
    try:
        package.check_schema_ids(service_schema_ids(package.feature_service))
    except ValueError as err:
        raise IncompatibleModel(str(err)) from None
    package.predict_proba(np.full((1, len(package.feature_order)), np.nan, dtype=np.float32))  # warm up
    return champion(package, version)


class ChampionHolder:
    """Holds the served ``Champion`` (None until one is loaded) and follows the alias in a thread."""

    def __init__(
        self,
        tracking_uri: str,
        name: str,
        alias: str,
        *,
        poll_interval_s: float,
        cache_dir: Path | None = None,
        on_swap: Callable[[Champion | None, Champion], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.name = name
        self.alias = alias
        self.poll_interval_s = poll_interval_s
        self.cache_dir = cache_dir
        self.on_swap = on_swap
        self.on_failure = on_failure
        self.current: Champion | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-poller", daemon=True)

    def _root(self) -> Path:
        from clinops_common.model import default_cache_dir

        return Path(self.cache_dir or default_cache_dir())

    def _pointer(self) -> Path:
        return self._root() / f"{_safe(self.name)}@{_safe(self.alias)}.version"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> None:
        """Resolve the alias once; load and swap if it names another version."""
        from clinops_common.model import resolve_alias

        version = resolve_alias(self.tracking_uri, self.name, self.alias)
        if version is None:
            raise LookupError(f"registered model {self.name!r} has no alias {self.alias!r}")
        if self.current is not None and self.current.version == version:
            return
        self._swap(load_champion(self.tracking_uri, self.name, version, self.cache_dir))

    def _swap(self, new: Champion) -> None:
        old, self.current = self.current, new
        try:
            pointer = self._pointer()
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.write_text(new.version)
        except OSError:
            pass
        if self.on_swap is not None:
            self.on_swap(old, new)

    def _from_cache(self) -> bool:
        """At start with the registry unreachable: the version served last, if it is in the cache."""
        try:
            version = self._pointer().read_text().strip()
        except OSError:
            return False
        if not (self._root() / _safe(self.name) / _safe(version)).is_dir():  # the package's cache layout
            return False
        try:
            self._swap(load_champion(self.tracking_uri, self.name, version, self.cache_dir))  # no registry call
        except Exception:
            return False
        return True

    def _failed(self, err: BaseException) -> None:
        if self.on_failure is not None:
            self.on_failure(f"{type(err).__name__}: {err}")

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as err:
                self._failed(err)
                if first and self.current is None:
                    self._from_cache()
            first = False
            self._stop.wait(self.poll_interval_s if self.current is not None else min(self.poll_interval_s, 2.0))


def describe(champ: Champion | None) -> dict[str, Any]:
    if champ is None:
        return {"model_name": None, "model_version": None}
    return {"model_name": champ.name, "model_version": champ.version, "feature_order_id": champ.order.id}
