"""An open-loop load generator: requests leave on a fixed schedule whatever the responses, and each
latency is measured from its scheduled send time (a closed-loop tool such as wrk waits for answers
before sending more and hides queueing). Keep-alive connections (opened by a warm-up run), uvloop,
and the generator's own send lag and CPU time reported, so a late generator is seen, not blamed on
the server. Runs in a process of its own:

    python -m clinops_devstack.bench.loadgen --url http://127.0.0.1:3000/predict --rate 200 --duration 60 --out run.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, scheduled: float, out: list[Any]) -> None:
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
            payload = await r.read()
            status = r.status
    except (aiohttp.ClientError, TimeoutError):  # counted as failures, never fatal
        status, payload = 0, b""
    done = time.perf_counter()
    pid = None
    if status == 200:
        try:
            pid = json.loads(payload).get("prediction_id")
        except ValueError:
            pid = None
    out.append((scheduled, (done - scheduled) * 1000, status, pid))


async def _schedule(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], *, rate: float, n: int, out: list[Any]
) -> list[float]:
    """Send ``n`` requests at ``rate`` on a fixed schedule; returns each send's lag behind its schedule (s)."""
    tasks = []
    lags = []
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, time.perf_counter() - scheduled))
        tasks.append(asyncio.create_task(_one(session, url, bodies[i % len(bodies)], scheduled, out)))
    await asyncio.gather(*tasks)
    return lags


async def run(
    url: str, rate: float, duration_s: float, patients: list[str], *, warmup_s: float = 2.0, seed: int = 0
) -> dict[str, Any]:
    """``warmup_s`` at ``rate`` first (not recorded: it opens the keep-alive connections), then the run."""
    rng = random.Random(seed)  # noqa: S311 - which patient to ask for, not a secret
    results: list[Any] = []
    connector = aiohttp.TCPConnector(limit=512, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    n = int(rate * duration_s)
    bodies = [json.dumps({"patient_id": rng.choice(patients)}).encode() for _ in range(min(n, 10_000))]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _schedule(session, url, bodies, rate=rate, n=int(rate * warmup_s), out=[])
        cpu0 = time.process_time()
        lags = sorted(await _schedule(session, url, bodies, rate=rate, n=n, out=results))
        cpu_s = time.process_time() - cpu0
    results.sort()
    return {
        "rate": rate,
        "duration_s": duration_s,
        "sent": n,
        "max_send_lag_ms": lags[-1] * 1000 if lags else 0.0,
        "p99_send_lag_ms": lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else 0.0,
        "cpu_s": cpu_s,
        "latencies_ms": [r[1] for r in results],
        "statuses": [r[2] for r in results],
        "prediction_ids": [r[3] for r in results if r[3]],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds at the rate before the recorded run")
    p.add_argument("--patients", type=int, default=10_000, help="patient keys PT00000.. drawn at random")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    patients = [f"PT{i:05d}" for i in range(args.patients)]
    result = uvloop.run(run(args.url, args.rate, args.duration, patients, warmup_s=args.warmup))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
