"""Users and sites (administrators; the site list also for the trial's readers)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.sites import list_sites, rename_site
from immunosep.conduct.users import create_user, deactivate_user, decide, pending_approvals, reset_password
from immunosep.web.bounds import PathId
from immunosep.web.deps import TransactionRoute, current_actor, get_db

router = APIRouter(route_class=TransactionRoute, tags=["administration"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=1000)
    role: str
    sites: list[str] = Field(default_factory=list, description="home site, or a monitor's sites")


class PasswordResetIn(BaseModel):
    password: str = Field(max_length=1000)
    reason: str = Field(max_length=1000, description="why (audited): say how the user's identity was checked")


class SiteNameIn(BaseModel):
    name: str = Field(max_length=200)


@router.get("/sites")
def get_sites(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    return [asdict(s) for s in list_sites(db, actor)]


@router.post("/sites/{code}")
def post_site_name(
    code: str, body: SiteNameIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    return asdict(rename_site(db, actor, code, body.name))


@router.post("/users", status_code=201)
def post_user(
    body: UserIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Create an account (admin); the password is stored as an argon2 hash only."""
    user = create_user(db, actor, body.username, body.password, body.role, body.sites or None)
    return {
        "username": user.username,
        "role": user.role,
        "sites": body.sites,
        "pending_approval": not user.active,  # an unblinded role waits for a second administrator
    }


@router.post("/users/{username}/deactivate", status_code=204)
def post_deactivate(
    username: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> None:
    deactivate_user(db, actor, username)


@router.post("/users/{username}/password")
def post_reset_password(
    username: str, body: PasswordResetIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Set a user's password (admin), with the reason audited; an unblinded account's waits for approval."""
    return asdict(reset_password(db, actor, username, body.password, body.reason))


@router.get("/approvals")
def get_approvals(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """Account changes waiting for a second administrator (four eyes)."""
    return [asdict(p) for p in pending_approvals(db, actor)]


@router.post("/approvals/{approval_id}/approve", status_code=204)
def post_approve(
    approval_id: PathId, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> None:
    """Approve a change another administrator requested."""
    decide(db, actor, approval_id, approve=True)


@router.post("/approvals/{approval_id}/refuse", status_code=204)
def post_refuse(
    approval_id: PathId, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> None:
    """Refuse a change another administrator requested."""
    decide(db, actor, approval_id, approve=False)
