"""Where the server meets the registry: the version it serves and the queue it feeds.

``load_version`` resolves ``NAME:VERSION`` / ``NAME@STAGE``, verifies the stored artifact's
hash and loads it with its lineage, threat model and latest evaluation for ``/v1/model``.
``RegistryReviewSink`` writes review entries through the registry's audited, lock-serialised
write path, so concurrent flagged requests each land exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.errors import NotFoundError
from bastion.registry import Registry, ReviewStatus
from bastion.registry.db import Tx
from bastion.registry.hashing import to_jsonable
from bastion.registry.tables import ReviewItemRow
from bastion.serve.model import ServedModel, load_model_dir
from bastion.serve.review import ReviewEntry

__all__ = ["RegistryReviewSink", "load_version"]


class RegistryReviewSink:
    """A :class:`~bastion.serve.review.ReviewSink` over the registry's review queue.

    ``add`` writes all given entries in *one* audited transaction (the rows and audit
    entries ``registry.review.add`` would write, one ``review.add`` entry per row), so a
    group of concurrent requests costs one commit rather than one each.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, entries: Sequence[ReviewEntry]) -> None:
        if not entries:
            return
        rows = [
            {
                "request_id": e.request_id,
                "model": e.model,
                "inputs": to_jsonable(e.inputs, "review inputs"),
                "outputs": to_jsonable(e.outputs, "review outputs"),
                "scores": to_jsonable(dict(e.scores), "review scores"),
                "reasons": [str(r) for r in e.reasons],
            }
            for e in entries
        ]

        def work(tx: Tx) -> None:
            for row in rows:
                tx.insert(
                    ReviewItemRow(
                        status=ReviewStatus.PENDING.value,
                        label=None,
                        labelled_by=None,
                        labelled_at=None,
                        created_at=tx.now,
                        **row,
                    ),
                    "review.add",
                )

        self.registry.database.write(work)

    def ping(self) -> None:
        self.registry.review.list(limit=1)


def load_version(registry: Registry, ref: str) -> tuple[ServedModel, dict[str, Any]]:
    """The served model for ``ref`` and the version's config snapshot (for its data)."""
    version = registry.models.verify_artifact(ref)
    try:
        evaluation = registry.evaluations.latest(version.ref)
        latest: dict[str, Any] | None = {
            "id": evaluation.id,
            "threat_model_hash": evaluation.threat_model_hash,
            "measured": evaluation.measured,
            "claimed": evaluation.claimed,
            "sanity_flags": list(evaluation.sanity_flags),
            "unreliable": evaluation.unreliable,
            "created_at": evaluation.created_at.isoformat(),
        }
    except NotFoundError:
        latest = None
    lineage = {
        "ref": version.ref,
        "stage": version.stage.value,
        "parent": version.parent,
        "artifact_sha256": version.artifact_sha256,
        "dataset_fingerprint": version.dataset_fingerprint,
        "attack_library_version": version.attack_library_version,
        "code_version": version.code_version,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by,
    }
    threat = version.config.get("threat_model")
    loaded = load_model_dir(version.artifact_path, name=version.name, version=version.ref)
    served = ServedModel(
        name=loaded.name,
        version=loaded.version,
        members=loaded.members,
        input_shape=loaded.input_shape,
        classes=loaded.classes,
        input_scaling=loaded.input_scaling,
        temperature=loaded.temperature,
        lineage=lineage,
        threat_model=threat if isinstance(threat, dict) else None,
        evaluation=latest,
        source=f"registry:{version.ref}",
    )
    return served, dict(version.config)
