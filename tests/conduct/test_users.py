"""Accounts (21 CFR Part 11 §11.300, EU Annex 11): usernames, passwords, four eyes, the last administrator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from immunosep.conduct import users
from immunosep.conduct.access import actor_for
from immunosep.conduct.users import authenticate, create_user, deactivate_user
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store.db import session_scope
from immunosep.store.models import AccountApproval, AuditEntry, User

GOOD = "a fresh passphrase 7"


@pytest.mark.parametrize("name", ["INV1", " inv1 ", "Inv1", "\uff49\uff4e\uff56\uff11"])  # last: fullwidth
@pytest.mark.requirement("ACC-02")
def test_a_look_alike_of_an_existing_username_cannot_be_created(trial, name) -> None:
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="already exists"):
        create_user(s, trial.actors["admin"], name, GOOD, "lab")


@pytest.mark.parametrize(
    "name",
    ["inv\u200b1", "\u200dadmin", "ad\u00admin", "in v1", "inv\x001", "\u0430dmin", "a/b", ""],
    ids=["zero-width-space", "zwj", "soft-hyphen", "inner-space", "nul", "cyrillic-a", "slash", "empty"],
)
def test_invisible_control_and_mixed_script_usernames_are_refused(trial, name) -> None:
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError) as exc:
        create_user(s, trial.actors["admin"], name, GOOD, "lab")
    assert exc.value.field == "username"


def test_usernames_are_stored_normalised_and_log_in_however_typed(trial) -> None:
    with session_scope(trial.engine) as s:
        assert create_user(s, trial.actors["admin"], "  Dr.Papadopoulou ", GOOD, "lab").username == (
            "dr.papadopoulou"
        )
    with session_scope(trial.engine) as s:
        assert authenticate(s, "DR.PAPADOPOULOU", GOOD) is not None
        assert authenticate(s, "dr.papadopoulou\u200b", GOOD) is None  # never matches, never raises
        assert users.normalize_username("Σοφία") == "σοφία"  # one alphabet other than Latin is fine


@pytest.mark.parametrize(
    "password",
    [
        " " * 12,  # whitespace only
        "\t \u3000 \n  \u00a0   ",  # whitespace only, of several kinds
        "abcdefghi\x00jk",  # control character
        "abcde\u200bfghijk",  # invisible
        "a" * 16,  # one repeated character
        "abababababab",  # two characters
        "password123",  # common
        "Qwertyuiop",  # common, whatever the case
        "Summer2024!!",  # a common word with digits and symbols around it
        "1234567890",
        "short pw",
        "inv1 is my password",  # the username inside
    ],
)
@pytest.mark.requirement("ACC-02")
def test_weak_passwords_are_refused_with_a_reason(trial, password) -> None:
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError) as exc:
        users.reset_password(
            s, trial.actors["admin"], "inv1", password, "forgotten, identity checked by phone"
        )
    assert exc.value.field == "password"


def test_the_shipped_common_password_list_is_read_and_strong_passwords_pass() -> None:
    listed = users.common_passwords()
    assert len(listed) >= 300 and {"123456", "password", "qwertyuiop", "iloveyou"} <= listed
    for ok in ("correct horse battery", "Tr0ub4dor&3-plus", "κωδικός ασφαλείας 42"):
        users.check_password(ok, "inv1")


def test_admin_resets_a_blinded_users_password_with_a_reason_that_is_audited(trial) -> None:
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s:
        sid = users.start_session(s, trial.actors["inv1"].user_id)
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="reason"):
        users.reset_password(s, admin, "inv1", GOOD, "..........")
    with session_scope(trial.engine) as s:
        assert not users.reset_password(
            s, admin, "inv1", GOOD, "forgot it, identity checked"
        ).pending_approval
    with session_scope(trial.engine) as s:
        assert authenticate(s, "inv1", GOOD) is not None
        assert not users.session_is_live(s, sid, trial.actors["inv1"].user_id)  # the reset ended it
        entry = s.execute(
            select(AuditEntry).where(AuditEntry.table_name == "users", AuditEntry.field == "password_hash")
        ).scalar_one()
        assert entry.user_id == admin.user_id and "forgot it, identity checked" in entry.reason
    with session_scope(trial.engine) as s, pytest.raises(AccessDenied):
        users.reset_password(s, trial.actors["dm"], "inv1", GOOD, "forgot it, identity checked")


@pytest.mark.requirement("ACC-03")
def test_a_user_changes_its_own_password_and_its_other_sessions_end(trial) -> None:
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        here, elsewhere = users.start_session(s, inv.user_id), users.start_session(s, inv.user_id)
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="current password"):
        users.change_password(s, inv, "not my password", GOOD)
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="common"):
        users.change_password(s, inv, "correct horse battery", "password1234")
    with session_scope(trial.engine) as s:
        users.change_password(s, inv, "correct horse battery", GOOD, keep_session=here)
    with session_scope(trial.engine) as s:
        assert (
            authenticate(s, "inv1", GOOD) is not None
            and authenticate(s, "inv1", "correct horse battery") is None
        )
        assert users.session_is_live(s, here, inv.user_id) and not users.session_is_live(
            s, elsewhere, inv.user_id
        )


def _second_admin(trial):  # type: ignore[no-untyped-def]
    """A second administrator, made at set-up by the system owner (the command line's bootstrap)."""
    with session_scope(trial.engine) as s:
        return actor_for(s, create_user(s, None, "admin2", GOOD, "admin"))


@pytest.mark.parametrize(("role", "sites"), [("pharmacist", ["S01"]), ("dsmb", [])])
@pytest.mark.requirement("ACC-02")
def test_an_admin_cannot_unblind_itself_by_creating_an_unblinded_account(trial, role, sites) -> None:
    """Four eyes: the account waits inactive until a second, different administrator approves it."""
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s:
        create_user(s, admin, "mine", GOOD, role, sites, reason="cover for the night pharmacist")
    with session_scope(trial.engine) as s:
        assert authenticate(s, "mine", GOOD) is None  # cannot log in yet
        [pending] = users.pending_approvals(s, admin)
        assert (pending.username, pending.role, pending.requested_by) == ("mine", role, "admin")
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="another administrator"):
        users.approve(s, admin, pending.id)  # not by the one who asked
    with session_scope(trial.engine) as s:
        assert authenticate(s, "mine", GOOD) is None
    admin2 = _second_admin(trial)
    with session_scope(trial.engine) as s:
        users.approve(s, admin2, pending.id)
    with session_scope(trial.engine) as s:
        assert authenticate(s, "mine", GOOD) is not None
        approval = s.get(AccountApproval, pending.id)
        assert approval is not None and (approval.requested_by, approval.decided_by) == (
            admin.user_id,
            admin2.user_id,
        )
        audited = {
            (e.user_id, e.action)
            for e in s.execute(
                select(AuditEntry).where(AuditEntry.table_name == "account_approvals")
            ).scalars()
        }
        assert {(admin.user_id, "insert"), (admin2.user_id, "update")} <= audited
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="no pending"):
        users.approve(s, admin2, pending.id)  # decided once


@pytest.mark.requirement("ACC-02")
def test_an_admin_cannot_take_over_a_pharmacist_by_resetting_its_password(trial) -> None:
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s:
        assert users.reset_password(s, admin, "pharm1", GOOD, "forgot it, identity checked").pending_approval
    with session_scope(trial.engine) as s:
        assert authenticate(s, "pharm1", GOOD) is None and authenticate(s, "pharm1", "correct horse battery")
        [pending] = users.pending_approvals(s, admin)
    admin2 = _second_admin(trial)
    with session_scope(trial.engine) as s:
        users.decide(s, admin2, pending.id, approve=False)
    with session_scope(trial.engine) as s:
        assert authenticate(s, "pharm1", GOOD) is None
        assert s.get(AccountApproval, pending.id).password_hash is None  # type: ignore[union-attr]


@pytest.mark.requirement("ACC-02")
def test_the_last_active_administrator_cannot_be_deactivated(trial) -> None:
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="last active administrator"):
        deactivate_user(s, admin, "admin")
    admin2 = _second_admin(trial)
    with session_scope(trial.engine) as s:
        deactivate_user(s, admin2, "admin")
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="last active administrator"):
        deactivate_user(s, admin2, "ADMIN2")
    with session_scope(trial.engine) as s:
        assert s.execute(select(User.active).where(User.username == "admin2")).scalar_one()


@pytest.mark.requirement("ACC-03")
def test_deactivation_ends_every_session_of_the_user_at_once(trial) -> None:
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        tokens = [users.start_session(s, inv.user_id) for _ in range(3)]
    with session_scope(trial.engine) as s:
        deactivate_user(s, trial.actors["admin"], "inv1")
    with session_scope(trial.engine) as s:
        s.execute(User.__table__.update().where(User.id == inv.user_id).values(active=True))
    with session_scope(trial.engine) as s:
        assert not any(users.session_is_live(s, t, inv.user_id) for t in tokens)


def test_a_user_site_list_naming_a_site_twice_is_refused(trial) -> None:
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError, match="once"):
        create_user(s, trial.actors["admin"], "mon9", GOOD, "monitor", ["S01", "S01"])


def test_an_admin_cannot_approve_its_own_request_through_a_second_admin_account_it_made(trial) -> None:
    """Making (or taking over by a reset) another administrator account is itself under four eyes."""
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s:
        create_user(s, admin, "admin.alt", GOOD, "admin")
        create_user(s, admin, "mine", GOOD, "pharmacist", "S01")
    with session_scope(trial.engine) as s:
        assert authenticate(s, "admin.alt", GOOD) is None  # waits like an unblinded account
        assert {p.username for p in users.pending_approvals(s, admin)} == {"admin.alt", "mine"}
    admin2 = _second_admin(trial)
    with session_scope(trial.engine) as s:
        assert users.reset_password(
            s, admin, "admin2", GOOD + "x", "lost it, checked in person"
        ).pending_approval
    with session_scope(trial.engine) as s:
        assert authenticate(s, "admin2", GOOD + "x") is None and authenticate(s, "admin2", GOOD) is not None
    del admin2
