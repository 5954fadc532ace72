"""The online store: the latest feature vector per patient in Redis, read in one round trip.

One hash per patient, ``<prefix>:patient:<patient_id>``, expiring ``key_ttl`` after its last write
(the pipeline's ``stores.redis.ttlHours``, passed by the materialize stage; 48 hours by default).
This is Redis key expiry, how long a vector is kept at all; each view's freshness TTL (its
``FeatureView.ttl``) is separate and decides, on read, whether a kept row may still be served.
One field per feature view holds the view's whole row, packed: a header (the view's schema id, the
row's event and created times in microseconds), the numeric features as little-endian float64 (NaN
is null), then the string features as a JSON list. A value written under another schema id (the
view's definition changed) reads as missing, never as wrong numbers.

Reads enforce each view's TTL (Feast does not): a row older than its view's TTL comes back null and
flagged ``stale``.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import redis

from clinops_common.features.definitions import FeatureService, FeatureView, feature_service, feature_view
from clinops_common.features.pit import micros

HEADER = struct.Struct("<8sqq")  # schema id, event time (us), created time (us)
KEY_TTL = timedelta(hours=48)
STATE_KEY = "materialization"


# KEYS: patient keys; ARGV: ttl, n, field_1..field_n, then n values per key (empty = leave as is).
# Never backwards: a value whose (event us, created us) is older than the stored value of the same
# schema is not written (whichever path sends it); a value of another schema is always replaced.
_WRITE_SCRIPT = """
local ttl, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local fields = {}
for j = 1, n do fields[j] = ARGV[2 + j] end
local pos = 3 + n
local written = 0
for _, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, unpack(fields))
  local fv = {}
  for j = 1, n do
    local v = ARGV[pos]
    if v ~= '' then
      local old = stored[j]
      local keep = false
      if old and #old >= 24 and string.sub(old, 1, 8) == string.sub(v, 1, 8) then
        local oev, ocr = struct.unpack('<i8<i8', old, 9)
        local nev, ncr = struct.unpack('<i8<i8', v, 9)
        keep = oev > nev or (oev == nev and ocr > ncr)
      end
      if not keep then fv[#fv + 1] = fields[j]; fv[#fv + 1] = v; written = written + 1 end
    end
    pos = pos + 1
  end
  if #fv > 0 then redis.call('HSET', key, unpack(fv)) end
  redis.call('EXPIRE', key, ttl)
end
return written
"""


class OnlineStoreError(RuntimeError):
    pass


def _numeric(view: FeatureView) -> list[str]:
    return [f.name for f in view.features if f.dtype != "string"]


def _strings(view: FeatureView) -> list[str]:
    return [f.name for f in view.features if f.dtype == "string"]


_BLOCK = 2048  # rows per transposed block


def _records(view: FeatureView, rows: pd.DataFrame, prefix: bytes = b"", suffix: bytes = b"") -> np.ndarray:
    """The fixed-size part of each row's value (header and numeric features), as one numpy record
    array filled column by column (no per-row Python, no interleaving of a wide DataFrame), with a
    constant ``prefix`` and ``suffix`` around it when given."""
    numeric = _numeric(view)
    fields: list[Any] = [("sid", "S8"), ("ev", "<i8"), ("cr", "<i8"), ("v", "<f8", (len(numeric),))]
    if prefix:
        fields.insert(0, ("pre", f"S{len(prefix)}"))
    if suffix:
        fields.append(("suf", f"S{len(suffix)}"))
    packed = np.empty(len(rows), dtype=np.dtype(fields))
    if prefix:
        packed["pre"] = prefix
    if suffix:
        packed["suf"] = suffix
    packed["sid"] = view.schema_id.encode()
    packed["ev"] = micros(rows[view.timestamp_field])
    packed["cr"] = micros(rows[view.created_timestamp_field])
    if numeric:
        # columns stacked (contiguous copies), then transposed into the records a block at a time:
        # a block fits in cache, where column-by-column writes into wide records do not
        columns = np.stack([rows[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in numeric])
        values = packed["v"]
        for i in range(0, len(rows), _BLOCK):
            values[i : i + _BLOCK] = columns[:, i : i + _BLOCK].T
    return packed


def _string_parts(view: FeatureView, rows: pd.DataFrame) -> tuple[np.ndarray, list[bytes]]:
    """Per row, the code of its combination of string values, and each combination's JSON list
    (the few distinct combinations are encoded once each)."""
    combo = np.zeros(len(rows), dtype=np.int64)
    codes_by_feature, texts_by_feature = [], []
    for name in _strings(view):
        codes, values = pd.factorize(rows[name], use_na_sentinel=True)
        texts_by_feature.append([json.dumps(str(u)) for u in values] + ["null"])  # the last: null
        codes = np.where(codes < 0, len(values), codes)
        codes_by_feature.append(codes)
        combo = pd.factorize(combo * (len(values) + 1) + codes)[0]  # stays below rows x values
    first = np.unique(combo, return_index=True)[1]  # a row of each combination, in code order
    texts = [
        ("[" + ",".join(t[c[r]] for t, c in zip(texts_by_feature, codes_by_feature, strict=True)) + "]").encode()
        for r in first.tolist()
    ]
    return combo, texts


def encode_rows(view: FeatureView, rows: pd.DataFrame) -> list[bytes]:
    """One packed value per row of ``rows`` (the view's columns): the numeric part as one numpy
    record array, the string part as a JSON list (encoded once per distinct combination)."""
    packed = _records(view, rows)
    out: list[bytes] = packed.view(f"V{packed.dtype.itemsize}").tolist()  # raw bytes, trailing zeros kept
    if _strings(view):
        combo, texts = _string_parts(view, rows)
        out = [blob + texts[c] for blob, c in zip(out, combo.tolist(), strict=True)]
    return out


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def encode_bulks(view: FeatureView, rows: pd.DataFrame) -> np.ndarray:
    """Each row's packed value already framed as a RESP bulk string (``$<len>\\r\\n<value>\\r\\n``),
    as an object array: what the write command carries, with no per-argument packing later."""
    numeric_size = HEADER.size + 8 * len(_numeric(view))
    if not _strings(view):
        packed = _records(view, rows, prefix=b"$%d\r\n" % numeric_size, suffix=b"\r\n")
        return np.array(packed.view(f"V{packed.dtype.itemsize}").tolist(), dtype=object)
    packed = _records(view, rows)
    combo, texts = _string_parts(view, rows)
    pre = [b"$%d\r\n" % (numeric_size + len(t)) for t in texts]
    post = [t + b"\r\n" for t in texts]
    raw = packed.view(f"V{packed.dtype.itemsize}").tolist()
    return np.array([pre[c] + blob + post[c] for blob, c in zip(raw, combo.tolist(), strict=True)], dtype=object)


@dataclass(frozen=True)
class Decoded:
    event_us: int
    created_us: int
    values: dict[str, Any]


_Plan = tuple[list[str], frozenset[str], frozenset[str], list[str], bytes]
_PLANS: dict[int, tuple[FeatureView, _Plan]] = {}


def _plan(view: FeatureView) -> _Plan:
    """The view's decoding plan, kept per view object (hashing a view, hundreds of fields, on every
    read would cost more than the decoding)."""
    hit = _PLANS.get(id(view))
    if hit is not None and hit[0] is view:
        return hit[1]
    plan = _make_plan(view)
    _PLANS[id(view)] = (view, plan)
    return plan


def _make_plan(view: FeatureView) -> _Plan:
    numeric = _numeric(view)
    ints = frozenset(f.name for f in view.features if f.dtype == "int64")
    bools = frozenset(f.name for f in view.features if f.dtype == "bool")
    return numeric, ints, bools, _strings(view), view.schema_id.encode()


@dataclass(frozen=True)
class Packed:
    """A view's row as stored, unpacked but not turned into Python values."""

    event_us: int
    created_us: int
    numbers: np.ndarray  # the view's numeric features in view order, float64, NaN = null
    strings: list[Any]  # the view's string features in view order


def unpack(view: FeatureView, blob: bytes | None) -> Packed | None:
    """The row packed in ``blob``, or None when absent or written under another schema."""
    if not blob:
        return None
    numeric, _, _, strs, sid = _plan(view)
    got_sid, ev, cr = HEADER.unpack_from(blob)
    if got_sid != sid:
        return None
    end = HEADER.size + 8 * len(numeric)
    nums = np.frombuffer(blob, dtype="<f8", count=len(numeric), offset=HEADER.size)
    return Packed(ev, cr, nums, json.loads(blob[end:]) if strs else [])


def decode(view: FeatureView, blob: bytes | None) -> Decoded | None:
    """The row packed in ``blob`` as Python values, or None when absent or written under another schema."""
    packed = unpack(view, blob)
    if packed is None:
        return None
    return Decoded(packed.event_us, packed.created_us, _values(view, packed))


def _values(view: FeatureView, packed: Packed) -> dict[str, Any]:
    numeric, ints, bools, strs, _ = _plan(view)
    nums = packed.numbers.tolist()
    values: dict[str, Any] = {n: (None if math.isnan(v) else v) for n, v in zip(numeric, nums, strict=True)}
    for n in ints:
        if values[n] is not None:
            values[n] = int(values[n])
    for n in bools:
        if values[n] is not None:
            values[n] = bool(values[n])
    values.update(zip(strs, packed.strings, strict=True))
    return values


def latest_rows(view: FeatureView, rows: pd.DataFrame, *, as_of: datetime | None = None) -> pd.DataFrame:
    """Per patient, the row a point-in-time join at ``as_of`` would pick before the TTL: the latest
    event (ties: latest created) among rows with event and created times at or before ``as_of``."""
    ev, cr = micros(rows[view.timestamp_field]), micros(rows[view.created_timestamp_field])
    keep = np.ones(len(rows), dtype=bool)
    if as_of is not None:
        t = pd.Timestamp(as_of)
        t_us = (t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")).value // 1000
        keep = (ev <= t_us) & (cr <= t_us)
    codes, _ = pd.factorize(rows[view.entity.join_key])
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((cr[idx], ev[idx], codes[idx]))]  # by patient, then event, then created
    last = np.ones(len(order), dtype=bool)
    last[:-1] = codes[order][1:] != codes[order][:-1]
    winners = np.sort(order[last])
    if len(winners) == len(rows):
        return rows
    return rows.iloc[winners]


@dataclass(frozen=True)
class Freshness:
    event_timestamp: datetime | None
    age_s: float | None
    stale: bool  # older than the view's TTL: values nulled
    missing: bool  # nothing stored for this patient and view


@dataclass(frozen=True)
class OnlineVector:
    patient_id: str
    features: dict[str, Any]
    freshness: dict[str, Freshness]


@dataclass(frozen=True)
class StoredRow:
    """One view's row for a patient at read time: its freshness, and its values unless stale or missing."""

    freshness: Freshness
    packed: Packed | None  # None when missing, or stale (never served)


class OnlineStore:
    """Feature vectors in Redis: written by materialization, read by the scorer."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "clinops:fs",
        key_ttl: timedelta = KEY_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.key_ttl = int(key_ttl.total_seconds())
        self.clock = clock
        self._sha: str | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> OnlineStore:
        return cls(redis.Redis.from_url(url), **kwargs)

    def key(self, patient_id: str) -> str:
        return f"{self.prefix}:patient:{patient_id}"

    # ---- writes ----
    def write(
        self, rows_by_view: dict[str, pd.DataFrame], *, chunk: int = 500, connections: int = 4, block: int = 8192
    ) -> int:
        """Write each view's rows (one per patient), all views of a patient in one HSET, pipelined.
        Returns the number of (patient, view) rows written: a row older than the stored one (by
        event time, then created time) is not written (the store never goes backwards).

        Patients go in blocks of ``block``: a thread encodes the next block's rows while this one's
        commands are sent (the server's time and the client's encoding overlap instead of adding)."""
        names = [n for n, rows in rows_by_view.items() if len(rows)]
        if not names:
            return 0
        views = [feature_view(n) for n in names]
        ids = [rows_by_view[n][v.entity.join_key].to_numpy() for n, v in zip(names, views, strict=True)]
        codes, patients = pd.factorize(np.concatenate(ids))
        ends = np.cumsum([len(i) for i in ids])
        view_codes = np.split(codes, ends[:-1])  # per view: each row's patient index
        keys = [_bulk(self.key(str(pid)).encode()) for pid in patients]

        def encoded(lo: int, hi: int) -> np.ndarray:
            """Patients [lo, hi) x views of RESP bulk strings; a view without a row for a patient
            sends "" (its field is left as is)."""
            values = np.full((hi - lo, len(names)), _bulk(b""), dtype=object)
            for j, (name, view) in enumerate(zip(names, views, strict=True)):
                c = view_codes[j]
                sel = np.flatnonzero((c >= lo) & (c < hi))
                if len(sel) == len(c):
                    values[c - lo, j] = encode_bulks(view, rows_by_view[name])
                elif len(sel):
                    values[c[sel] - lo, j] = encode_bulks(view, rows_by_view[name].iloc[sel])
            return values

        n = len(patients)
        if n <= block:  # one block (the streaming featurizer's flushes): nothing to overlap, no thread
            return self._call_script(keys, names, encoded(0, n), chunk, connections)
        from concurrent.futures import ThreadPoolExecutor

        written = 0
        with ThreadPoolExecutor(1, thread_name_prefix="online-encode") as encoder:
            pending = encoder.submit(encoded, 0, min(block, n))
            for lo in range(0, n, block):
                values = pending.result()
                if lo + block < n:
                    pending = encoder.submit(encoded, lo + block, min(lo + 2 * block, n))
                written += self._call_script(keys[lo : lo + block], names, values, chunk, connections)
        return written

    def _call_script(
        self, keys: list[bytes], fields: list[str], values: np.ndarray, chunk: int, connections: int
    ) -> int:
        """One script call per chunk of keys, sent as ready-made RESP (hiredis' per-argument packing
        was most of the client's time), pipelined on up to ``connections`` connections at once: one
        thread builds a chunk's command while others wait on the socket and the server runs theirs."""
        sha = self._script_sha().encode()
        tail = _bulk(b"%d" % self.key_ttl) + _bulk(b"%d" % len(fields)) + b"".join(_bulk(f.encode()) for f in fields)
        starts = list(range(0, len(keys), chunk))

        def command(i: int) -> bytes:
            k = min(chunk, len(keys) - i)
            head = b"*%d\r\n$7\r\nEVALSHA\r\n%s%s" % (
                3 + k + 2 + len(fields) + k * len(fields),
                _bulk(sha),
                _bulk(b"%d" % k),
            )
            return b"".join((head, *keys[i : i + k], tail, *values[i : i + k].ravel().tolist()))

        def send(mine: list[int]) -> list[Any]:
            conn = self.client.connection_pool.get_connection()
            try:
                for i in mine:
                    conn.send_packed_command([command(i)], check_health=False)  # type: ignore[no-untyped-call]
                return [conn.read_response(disable_decoding=True) for _ in mine]
            except BaseException:
                conn.disconnect()  # type: ignore[no-untyped-call]
                raise
            finally:
                self.client.connection_pool.release(conn)

        lanes = max(1, min(connections, len(starts)))
        if lanes == 1:
            replies = send(starts)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(lanes, thread_name_prefix="online-write") as pool:
                replies = [r for part in pool.map(send, [starts[j::lanes] for j in range(lanes)]) for r in part]
        errors = [r for r in replies if isinstance(r, Exception)]
        if errors:
            raise OnlineStoreError(f"online write failed: {errors[0]}")
        return int(sum(int(r) for r in replies))

    def _script_sha(self) -> str:
        if self._sha is None:
            self._sha = str(self.client.script_load(_WRITE_SCRIPT))
        return self._sha

    def stored_times(self, view: FeatureView, patient_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(event us, created us) of what is stored now, for compare-and-write."""
        pipe = self.client.pipeline(transaction=False)
        for pid in patient_ids:
            pipe.hget(self.key(pid), view.name)
        out = {}
        for pid, blob in zip(patient_ids, pipe.execute(), strict=True):
            if blob and HEADER.unpack_from(blob)[0] == view.schema_id.encode():
                _, ev, cr = HEADER.unpack_from(blob)
                out[pid] = (ev, cr)
        return out

    def state(self) -> dict[str, str]:
        raw = self.client.hgetall(f"{self.prefix}:{STATE_KEY}")
        return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]

    def set_state(self, values: dict[str, str]) -> None:
        self.client.hset(f"{self.prefix}:{STATE_KEY}", mapping=values)  # type: ignore[arg-type]

    # ---- reads ----
    def get_online_rows(self, service: str | FeatureService, patient_ids: Iterable[str]) -> list[dict[str, StoredRow]]:
        """Per patient, each view the service reads -> its stored row and freshness (the view's TTL
        applied); one Redis round trip, values left packed (``get_online_features`` decodes them)."""
        svc = feature_service(service) if isinstance(service, str) else service
        pids = list(patient_ids)
        views = [feature_view(v) for v in svc.views_used]
        fields = [v.name for v in views]
        if len(pids) == 1:
            replies = [self.client.hmget(self.key(pids[0]), fields)]
        else:
            pipe = self.client.pipeline(transaction=False)
            for pid in pids:
                pipe.hmget(self.key(pid), fields)
            replies = pipe.execute()
        now_us = int(self.clock() * 1_000_000)
        out = []
        for blobs in replies:
            rows: dict[str, StoredRow] = {}
            for view, blob in zip(views, blobs, strict=True):
                packed = unpack(view, blob if isinstance(blob, bytes) else None)
                if packed is None:
                    rows[view.name] = StoredRow(Freshness(None, None, stale=False, missing=True), None)
                    continue
                age_us = now_us - packed.event_us
                stale = view.ttl.total_seconds() > 0 and age_us > view.ttl.total_seconds() * 1_000_000
                at = datetime.fromtimestamp(packed.event_us / 1_000_000, UTC)
                rows[view.name] = StoredRow(
                    Freshness(at, age_us / 1_000_000, stale=stale, missing=False), None if stale else packed
                )
            out.append(rows)
        return out

    def get_online_features(self, service: str | FeatureService, patient_ids: Iterable[str]) -> list[OnlineVector]:
        """The service's features for each patient, with per-view freshness; one Redis round trip."""
        svc = feature_service(service) if isinstance(service, str) else service
        pids = list(patient_ids)
        return [
            OnlineVector(pid, row_features(svc, rows), {name: row.freshness for name, row in rows.items()})
            for pid, rows in zip(pids, self.get_online_rows(svc, pids), strict=True)
        ]


def row_features(svc: FeatureService, rows: Mapping[str, StoredRow]) -> dict[str, Any]:
    """Feature name -> value of the service's features from ``get_online_rows``'s rows of one
    patient (None for the features of a stale or missing view)."""
    feats: dict[str, Any] = {}
    for name, names in svc.by_view().items():
        row = rows.get(name)
        if row is None or row.packed is None:
            feats.update(dict.fromkeys(names))
            continue
        values = _values(feature_view(name), row.packed)
        feats.update({n: values[n] for n in names})
    return feats
