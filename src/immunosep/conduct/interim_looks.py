"""The history of group-sequential interim looks: recorded once per data cut, read by the DSMB only.

``immunosep analyse --interim`` on a group-sequential protocol records each look through
:func:`record_look`: the look's number, the information fraction observed, the z statistic against the
boundaries at that information, the decision, the data cut's SHA-256, when (UTC) and who ran it. The insert
is an audit-chain entry like any other (``store.audit``); the table is an allocation table of
``conduct.blinding``, so the entry is shown to unblinded roles only. Running the analysis again on the same
data cut records nothing new: the same digest is the same look (:func:`record_look` returns the stored one).

Later looks spend alpha at the earlier looks' *observed* fractions (:func:`observed_rates`), as rpact's
``getAnalysisResults`` with a user-defined ``informationRates`` does.

Reading the history (:func:`list_looks`) needs the right to read the DSMB report; recording it the right to
run the interim analysis (``conduct.permissions``). ``actor=None`` is the command line with database access
(as the trial lock), recorded under the login name it gives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, trial
from immunosep.conduct.permissions import require
from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.models import InterimLook, User


@dataclass(frozen=True)
class InterimLookView:
    """One recorded look (the by-arm numbers are the DSMB's: see the module docstring)."""

    look: int
    endpoint: str
    information_rate: float
    planned_information_rate: float | None
    statistic: float
    efficacy_bound: float
    futility_bound: float | None
    decision: str
    data_cut_sha256: str
    run_at: datetime
    run_by: str
    result: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the time in ISO 8601, UTC)."""
        out = {k: v for k, v in self.__dict__.items() if k != "result"}
        out["run_at"] = self.run_at.isoformat(timespec="seconds")
        return out


def _view(row: InterimLook) -> InterimLookView:
    return InterimLookView(
        look=row.look,
        endpoint=row.endpoint,
        information_rate=row.information_rate,
        planned_information_rate=row.planned_information_rate,
        statistic=row.statistic,
        efficacy_bound=row.efficacy_bound,
        futility_bound=row.futility_bound,
        decision=row.decision,
        data_cut_sha256=row.data_cut_sha256,
        run_at=row.run_at,
        run_by=row.run_by,
        result=json.loads(row.result),
    )


def list_looks(session: Session, actor: Actor | None) -> list[InterimLookView]:
    """Every recorded look, in order (DSMB only; ``None`` = the command line with database access)."""
    if actor is not None:
        require(actor, "read_dsmb_report")
    rows = session.execute(select(InterimLook).order_by(InterimLook.look)).scalars().all()
    return [_view(r) for r in rows]


def observed_rates(looks: Sequence[InterimLookView], digest: str) -> tuple[int, list[float]]:
    """The number of the look of data cut ``digest`` and the observed fractions of the looks before it.

    A data cut already recorded keeps its number (and its earlier looks); a new one is the next look.
    """
    for v in looks:
        if v.data_cut_sha256 == digest:
            return v.look, [w.information_rate for w in looks if w.look < v.look]
    return len(looks) + 1, [w.information_rate for w in looks]


def record_look(
    session: Session,
    actor: Actor | None,
    look: Mapping[str, Any],
    *,
    run_by: str = "",
) -> tuple[InterimLookView, bool]:
    """Record an interim look (``analysis.interim.analyse_group_sequential``'s result); returns the stored
    look and whether it is new. The same data cut (SHA-256) returns the look already stored, unchanged.

    ``look`` needs ``data_cut_sha256``, ``endpoint``, ``planned_information_rate`` and ``look`` (the
    ``stats.interim.InterimResult`` as a dict: ``look``, ``information_rate``, ``z``, ``efficacy_z``,
    ``futility_z``, ``decision``).
    """
    if actor is not None:
        require(actor, "record_interim_look")
        begin(session, actor, "interim look")
    else:
        audit.set_context(session, None, f"interim look (command line: {run_by or 'unknown'})")
        audit.acquire_chain_lock(session)
    digest = str(look.get("data_cut_sha256", ""))
    result = look.get("look")
    if len(digest) != 64 or not isinstance(result, Mapping):
        raise ImmunoSepError(
            "an interim look needs its data cut's SHA-256 and a computed look to be recorded"
        )
    stored = session.execute(
        select(InterimLook).where(InterimLook.data_cut_sha256 == digest)
    ).scalar_one_or_none()
    if stored is not None:
        return _view(stored), False
    last = session.execute(
        select(InterimLook).order_by(InterimLook.look.desc()).limit(1)
    ).scalar_one_or_none()
    number = int(result["look"])
    expected = 1 if last is None else last.look + 1
    if number != expected:
        raise ImmunoSepError(
            f"this data cut would be look {number}, but the next look of the history is {expected}; "
            "recompute the look from the recorded history"
        )
    rate = float(result["information_rate"])
    if last is not None and rate <= last.information_rate:
        raise ImmunoSepError(
            f"the information fraction ({rate:.4f}) has not grown since look {last.look} "
            f"({last.information_rate:.4f}); a new look needs more patients (or events) with the endpoint"
        )
    name = run_by
    user_id = None
    if actor is not None:
        user_id = actor.user_id
        name = (
            actor.username
            or session.execute(select(User.username).where(User.id == actor.user_id)).scalar_one()
        )
    row = InterimLook(
        trial_id=trial(session).id,
        look=number,
        endpoint=str(look.get("endpoint", "binary")),
        information_rate=rate,
        planned_information_rate=look.get("planned_information_rate"),
        statistic=float(result["z"]),
        efficacy_bound=float(result["efficacy_z"]),
        futility_bound=None if result.get("futility_z") is None else float(result["futility_z"]),
        decision=str(result["decision"]),
        data_cut_sha256=digest,
        result=json.dumps(dict(look), sort_keys=True, allow_nan=False, default=str),
        run_by_user_id=user_id,
        run_by=(name or "unknown")[:120],
    )
    session.add(row)
    session.flush()
    return _view(row), True
