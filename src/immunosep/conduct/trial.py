"""The trial itself: created once (:func:`init_trial`), and the protocol it runs under (:func:`protocol_of`).

Creating a trial is a conduct operation: the store migrates the schema (``store.db.upgrade_db``), this
module stores the protocol text and its hash, creates sites ``S01..SNN`` and their sealed randomization
lists (permuted blocks, or under a response-adaptive design slots whose arm is drawn at allocation). The trial row itself is read by :func:`immunosep.conduct.access.trial`, beside the writers' lock
that keeps it fresh (``access.begin``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import PROTOCOL_SHA256, trial
from immunosep.conduct.randomization import (
    NO_ARM_YET,
    adaptive_uniform,
    generate_site_list,
    kit_numbers,
    seed_fingerprint,
)
from immunosep.errors import ImmunoSepError
from immunosep.protocol import load_protocol
from immunosep.protocol.loader import bundled_protocol_path, parse_protocol, resolved_protocol_text
from immunosep.protocol.schema import Protocol
from immunosep.store import audit
from immunosep.store.db import make_engine, session_scope, transaction_cache, upgrade_db
from immunosep.store.models import RandomizationSlot, Site, Trial


def site_code(number: int) -> str:
    """``S07`` for site 7 (two digits, more when needed)."""
    return f"S{number:02d}"


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_trial` created. ``seed`` regenerates the randomization lists: keep it secret and safe."""

    trial_id: int
    trial_code: str
    site_codes: tuple[str, ...]
    slots_per_site: int
    seed: str


def init_trial(
    url: str,
    protocol_path: str | Path | None = None,
    sites: int | None = None,
    *,
    seed: str | None = None,
    slots_per_site: int | None = None,
) -> InitResult:
    """Create the schema and seed the trial: protocol text and hash, ``sites`` sites, sealed lists.

    ``sites`` defaults to ``protocol.trial.sites``; ``slots_per_site`` to ``protocol.randomization``.
    A database that already holds a trial is refused.
    """
    upgrade_db(url)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            if session.execute(select(Trial.id)).first() is not None:
                raise ImmunoSepError(f"database {url!r} already holds a trial; use `db upgrade` instead")
            return seed_trial(
                session, protocol_path=protocol_path, sites=sites, seed=seed, slots_per_site=slots_per_site
            )
    finally:
        engine.dispose()


def seed_trial(
    session: Session,
    *,
    protocol_path: str | Path | None = None,
    sites: int | None = None,
    seed: str | None = None,
    slots_per_site: int | None = None,
) -> InitResult:
    """Store the protocol, create the sites and their sealed randomization lists in one transaction."""
    path = Path(protocol_path) if protocol_path else bundled_protocol_path()
    protocol = load_protocol(path)
    text = resolved_protocol_text(path)  # the protocol as validated: a file that extends another, resolved
    n_sites = sites if sites is not None else protocol.trial.sites
    if n_sites < 1:
        raise ImmunoSepError(f"--sites must be at least 1, got {n_sites}")
    n_slots = slots_per_site if slots_per_site is not None else protocol.randomization.slots_per_site
    if n_slots < 1:
        raise ImmunoSepError(f"slots per site must be at least 1, got {n_slots}")
    seed = seed or secrets.token_hex(32)
    audit.set_context(session, None, "trial initialisation")
    t = Trial(
        code=protocol.trial.code,
        protocol_text=text,
        protocol_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        randomization_seed_sha256=seed_fingerprint(seed),
    )
    session.add(t)
    session.flush()
    countries = protocol.trial.site_countries(n_sites)
    site_rows = [
        Site(trial_id=t.id, code=site_code(i), name=f"Site {i}", country=countries[i - 1])
        for i in range(1, n_sites + 1)
    ]
    session.add_all(site_rows)
    session.flush()
    per_site = _add_slots(session, protocol, seed, site_rows, n_slots)
    return InitResult(
        trial_id=t.id,
        trial_code=t.code,
        site_codes=tuple(s.code for s in site_rows),
        slots_per_site=per_site,
        seed=seed,
    )


def _add_slots(session: Session, protocol: Protocol, seed: str, sites: list[Site], n_slots: int) -> int:
    if protocol.randomization.design == "adaptive":
        return _add_adaptive_slots(session, seed, sites, n_slots)
    lists = [generate_site_list(protocol, seed, s.code, n_slots) for s in sites]
    kits = iter(kit_numbers(seed, sum(len(x) for x in lists)))
    for site, slots in zip(sites, lists, strict=True):
        session.add_all(
            RandomizationSlot(
                site_id=site.id,
                sequence=s.sequence,
                block_number=s.block_number,
                block_size=s.block_size,
                arm=s.arm,
                kit_number=next(kits),
            )
            for s in slots
        )
    session.flush()
    return min(len(x) for x in lists)


def _add_adaptive_slots(session: Session, seed: str, sites: list[Site], n_slots: int) -> int:
    """Slots of a response-adaptive design: a kit number and a sealed uniform each, the arm drawn at allocation."""
    kits = iter(kit_numbers(seed, n_slots * len(sites)))
    for site in sites:
        session.add_all(
            RandomizationSlot(
                site_id=site.id,
                sequence=k,
                block_number=0,
                block_size=0,
                arm=NO_ARM_YET,
                kit_number=next(kits),
                uniform=adaptive_uniform(seed, site.code, k),
            )
            for k in range(1, n_slots + 1)
        )
    session.flush()
    return n_slots


def protocol_of(session: Session) -> Protocol:
    """The protocol the trial in this database runs under (parsed from the stored text).

    Parsed protocols are kept per SHA-256 of the text for the life of the process (they are frozen), so a
    service call reads only the hash (or none: the actor's statement read it): no text, no TOML parsing.
    """
    known = transaction_cache(session).get(PROTOCOL_SHA256)  # read with the actor (access.actor_for)
    if known is not None and known in _PARSED:
        return _PARSED[known]
    t = trial(session)
    parsed = _PARSED.get(t.protocol_sha256)
    if parsed is None:
        parsed = parse_protocol(t.protocol_text, source="trials.protocol_text")
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[t.protocol_sha256] = parsed
    return parsed


#: Parsed protocols by the SHA-256 of their stored text (a handful per process at most).
_PARSED: dict[str, Protocol] = {}
_PARSED_MAX = 16
