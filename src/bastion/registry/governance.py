"""Who answers for what, and which risks are accepted: owners and the risk register.

Robustness work stalls when nobody owns the threat model, the red-team runs or the
incident response for a component, so each (component, role) pair names one owner. Risks
carry likelihood × impact on the usual 1–5 scales, the threat-model attacks they concern,
their mitigations and a review date, so an overdue review is a query, not a memory.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import NotFoundError, RegistryError
from bastion.registry.db import Database, Tx
from bastion.registry.hashing import utc
from bastion.registry.records import Owner, OwnerRole, Risk, RiskStatus, as_enum
from bastion.registry.tables import OwnerRow, RiskRow

__all__ = ["Owners", "Risks", "parse_date"]


def _text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{what} must not be empty")
    if len(value) > limit:
        raise RegistryError(f"{what} must be at most {limit} characters, got {len(value)}")
    return value.strip()


def _scale(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise RegistryError(f"{what} must be an integer from 1 to 5, got {value!r}")
    return value


def parse_date(value: date | str, what: str = "date") -> date:
    """A ``date``, or an ISO ``YYYY-MM-DD`` string; the error names ``what``."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RegistryError(f"{what} must be a date as YYYY-MM-DD, got {value!r}") from None


def _names(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return [_text(v, what, 200) for v in values]


def _owner(row: OwnerRow) -> Owner:
    return Owner(
        component=row.component,
        role=OwnerRole(row.role),
        owner=row.owner,
        updated_at=utc(row.updated_at),
        updated_by=row.updated_by,
    )


def _risk(row: RiskRow) -> Risk:
    return Risk(
        id=row.id,
        title=row.title,
        description=row.description,
        likelihood=row.likelihood,
        impact=row.impact,
        score=row.score,
        owner=row.owner,
        status=RiskStatus(row.status),
        attacks=tuple(str(a) for a in row.attacks),
        mitigations=tuple(str(m) for m in row.mitigations),
        next_review=row.next_review,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


class Owners:
    """``registry.owners``: one owner per component and role."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def set(self, component: str, role: OwnerRole | str, owner: str) -> Owner:
        """Name the owner of ``role`` for ``component`` (replacing any previous one)."""
        which = as_enum(OwnerRole, role, "owner role")
        component = _text(component, "component", 200)
        owner = _text(owner, "owner", 200)

        def work(tx: Tx) -> Owner:
            row = tx.session.scalars(
                select(OwnerRow).where(
                    OwnerRow.component == component, OwnerRow.role == which.value
                )
            ).first()
            if row is None:
                row = OwnerRow(
                    component=component,
                    role=which.value,
                    owner=owner,
                    updated_at=tx.now,
                    updated_by=tx.actor,
                )
                tx.insert(row, "owner.set")
            else:
                tx.update(row, "owner.set", owner=owner, updated_at=tx.now, updated_by=tx.actor)
            return _owner(row)

        return self._db.write(work)

    def get(self, component: str, role: OwnerRole | str) -> Owner:
        which = as_enum(OwnerRole, role, "owner role")

        def work(session: Session) -> Owner:
            row = session.scalars(
                select(OwnerRow).where(
                    OwnerRow.component == component, OwnerRow.role == which.value
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no {which.value} owner for {component!r}")
            return _owner(row)

        return self._db.read(work)

    def list(self, component: str | None = None) -> builtins.list[Owner]:
        def work(session: Session) -> builtins.list[Owner]:
            query = select(OwnerRow).order_by(OwnerRow.component, OwnerRow.role)
            if component is not None:
                query = query.where(OwnerRow.component == component)
            return [_owner(r) for r in session.scalars(query).all()]

        return self._db.read(work)


class Risks:
    """``registry.risks``: the risk register."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        title: str,
        *,
        likelihood: int,
        impact: int,
        owner: str,
        description: str = "",
        status: RiskStatus | str = RiskStatus.OPEN,
        attacks: Sequence[str] = (),
        mitigations: Sequence[str] = (),
        next_review: date | str | None = None,
    ) -> Risk:
        """Record a risk; its score is likelihood × impact."""
        title = _text(title, "risk title", 300)
        description = description.strip() if isinstance(description, str) else ""
        likelihood = _scale(likelihood, "likelihood")
        impact = _scale(impact, "impact")
        owner = _text(owner, "risk owner", 200)
        state = as_enum(RiskStatus, status, "risk status")
        attack_names = _names(attacks, "attack name")
        mitigation_list = _names(mitigations, "mitigation")
        review = parse_date(next_review, "next review date") if next_review is not None else None

        def work(tx: Tx) -> Risk:
            row = RiskRow(
                title=title,
                description=description,
                likelihood=likelihood,
                impact=impact,
                score=likelihood * impact,
                owner=owner,
                status=state.value,
                attacks=attack_names,
                mitigations=mitigation_list,
                next_review=review,
                created_at=tx.now,
                updated_at=tx.now,
            )
            tx.insert(row, "risk.add")
            return _risk(row)

        return self._db.write(work)

    def update(
        self,
        risk_id: int,
        *,
        title: str | None = None,
        description: str | None = None,
        likelihood: int | None = None,
        impact: int | None = None,
        owner: str | None = None,
        status: RiskStatus | str | None = None,
        attacks: Sequence[str] | None = None,
        mitigations: Sequence[str] | None = None,
        next_review: date | str | None = None,
    ) -> Risk:
        """Change the given fields (None leaves a field as it is); the score follows."""
        changes: dict[str, object] = {}
        if title is not None:
            changes["title"] = _text(title, "risk title", 300)
        if description is not None:
            changes["description"] = description.strip()
        new_likelihood = _scale(likelihood, "likelihood") if likelihood is not None else None
        new_impact = _scale(impact, "impact") if impact is not None else None
        if new_likelihood is not None:
            changes["likelihood"] = new_likelihood
        if new_impact is not None:
            changes["impact"] = new_impact
        if owner is not None:
            changes["owner"] = _text(owner, "risk owner", 200)
        if status is not None:
            changes["status"] = as_enum(RiskStatus, status, "risk status").value
        if attacks is not None:
            changes["attacks"] = _names(attacks, "attack name")
        if mitigations is not None:
            changes["mitigations"] = _names(mitigations, "mitigation")
        if next_review is not None:
            changes["next_review"] = parse_date(next_review, "next review date")
        if not changes:
            raise RegistryError("nothing to update: give at least one field")

        def work(tx: Tx) -> Risk:
            row = tx.session.get(RiskRow, risk_id)
            if row is None:
                raise NotFoundError(f"no risk #{risk_id} in the register")
            score = (new_likelihood or row.likelihood) * (new_impact or row.impact)
            tx.update(row, "risk.update", **changes, score=score, updated_at=tx.now)
            return _risk(row)

        return self._db.write(work)

    def get(self, risk_id: int) -> Risk:
        def work(session: Session) -> Risk:
            row = session.get(RiskRow, risk_id)
            if row is None:
                raise NotFoundError(f"no risk #{risk_id} in the register")
            return _risk(row)

        return self._db.read(work)

    def list(
        self, *, status: RiskStatus | str | None = None, due_by: date | None = None
    ) -> builtins.list[Risk]:
        """Risks by score, highest first; ``due_by`` keeps those to review by that date."""
        wanted = as_enum(RiskStatus, status, "risk status") if status is not None else None

        def work(session: Session) -> builtins.list[Risk]:
            query = select(RiskRow).order_by(RiskRow.score.desc(), RiskRow.id)
            if wanted is not None:
                query = query.where(RiskRow.status == wanted.value)
            if due_by is not None:
                query = query.where(RiskRow.next_review <= due_by)
            return [_risk(r) for r in session.scalars(query).all()]

        return self._db.read(work)
