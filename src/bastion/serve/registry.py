"""Where the server meets the registry: the version it serves and the queue it feeds.

``load_version`` resolves ``NAME:VERSION`` / ``NAME@STAGE``, verifies the stored artifact's
hash and loads it with its lineage, threat model and latest evaluation for ``/v1/model``.
``RegistryReviewSink`` hands review entries to ``registry.review.add_many`` — one audited,
lock-serialised transaction per group — so concurrent flagged requests each land exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.errors import NotFoundError
from bastion.registry import NewReviewItem, Registry
from bastion.serve.model import ServedModel, load_model_dir
from bastion.serve.review import ReviewEntry

__all__ = ["RegistryReviewSink", "load_version"]


class RegistryReviewSink:
    """A :class:`~bastion.serve.review.ReviewSink` over the registry's review queue.

    ``add`` writes all given entries in *one* audited transaction through
    ``registry.review.add_many`` (one ``review.add`` entry per row), so a group of concurrent
    requests costs one commit rather than one each.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, entries: Sequence[ReviewEntry]) -> None:
        self.registry.review.add_many(
            [
                NewReviewItem(
                    request_id=e.request_id,
                    inputs=e.inputs,
                    outputs=e.outputs,
                    scores=e.scores,
                    reasons=e.reasons,
                    model=e.model,
                )
                for e in entries
            ]
        )

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
