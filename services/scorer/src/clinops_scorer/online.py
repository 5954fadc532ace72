"""Redis adapter: the champion's feature service for one or many patients, in one round trip."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from clinops_common.features.online import OnlineStore, StoredRow


class FeaturesUnavailable(RuntimeError):
    """The online store cannot be read (Redis down or timing out)."""


class OnlineFeatures:
    def __init__(self, url: str, *, prefix: str, timeout_s: float = 1.0) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self.store = OnlineStore(self.client, prefix=prefix)

    def read(self, service: str, patient_ids: Sequence[str]) -> list[dict[str, StoredRow]]:
        """Per patient, view -> stored row and freshness (values still packed)."""
        try:
            return self.store.get_online_rows(service, patient_ids)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise FeaturesUnavailable(f"the online store is unreachable: {type(err).__name__}") from None

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.client.close()
