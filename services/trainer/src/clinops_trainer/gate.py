"""The promotion gate (pure): whether the champion alias moves to a new version, and why.

Passes when the candidate's test AUROC is at least ``min_auroc`` and, with ``must_beat_champion``,
strictly above the current champion's AUROC re-scored on the same test rows (the paired-bootstrap
95 % interval of the difference is reported beside it). With no champion yet, the first model passes
on ``min_auroc`` alone. A champion that cannot be re-scored (other features) refuses the gate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChampionScore:
    version: str
    auroc: float | None  # None: could not be re-scored
    diff_ci: tuple[float, float] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]


def decide(
    candidate_auroc: float, min_auroc: float, must_beat_champion: bool, champion: ChampionScore | None
) -> Decision:
    reasons: list[str] = []
    ok = True
    if candidate_auroc >= min_auroc:
        reasons.append(f"test AUROC {candidate_auroc:.4f} >= minimum {min_auroc:.4f}")
    else:
        ok = False
        reasons.append(f"test AUROC {candidate_auroc:.4f} below the minimum {min_auroc:.4f}")
    if not must_beat_champion:
        reasons.append("not required to beat the champion")
    elif champion is None:
        reasons.append("no champion yet")
    elif champion.auroc is None:
        ok = False
        reasons.append(f"champion version {champion.version} could not be re-scored on the test rows: {champion.error}")
    else:
        ci = ""
        if champion.diff_ci:
            lo, hi = champion.diff_ci
            ci = f" (paired bootstrap 95% CI of the difference [{lo:+.4f}, {hi:+.4f}])"
        diff = candidate_auroc - champion.auroc
        what = (
            f"champion version {champion.version} re-scored on the same test rows: "
            f"AUROC {champion.auroc:.4f}, difference {diff:+.4f}{ci}"
        )
        if diff > 0:
            reasons.append(f"beats {what}")
        else:
            ok = False
            reasons.append(f"does not beat {what}")
    return Decision(ok, tuple(reasons))
