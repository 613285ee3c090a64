"""Pipeline run/stage records with output reuse, and the human review queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.errors import NotFoundError, RegistryError
from bastion.registry import NewReviewItem, Registry, ReviewStatus, RunStatus


def test_stages_record_outcomes_and_outputs_are_reused_by_input_hash(registry: Registry) -> None:
    run = registry.runs.start("digits", config_hash="c" * 64)
    assert run.status is RunStatus.RUNNING
    registry.runs.start_stage(run.run_id, "train", input_hash="i1")
    assert registry.runs.cached("train", input_hash="i1") is None  # not finished yet
    done = registry.runs.finish_stage(run.run_id, "train", output={"model": "runs/m", "acc": 0.9})
    assert done.status is RunStatus.SUCCEEDED
    assert done.finished_at is not None
    registry.runs.start_stage(run.run_id, "evaluate", input_hash="i2")
    registry.runs.finish_stage(run.run_id, "evaluate", status="failed", error="boom")
    registry.runs.finish(run.run_id, "failed")

    # A later run with unchanged inputs finds the stored output; a failed stage is not reused.
    hit = registry.runs.cached("train", input_hash="i1")
    assert hit is not None
    assert hit.output == {"model": "runs/m", "acc": 0.9}
    assert hit.run_id == run.run_id
    assert registry.runs.cached("evaluate", input_hash="i2") is None
    assert registry.runs.cached("train", input_hash="other") is None

    # Resuming the same run restarts its failed stage in place.
    assert registry.runs.resume(run.run_id).status is RunStatus.RUNNING
    again = registry.runs.start_stage(run.run_id, "evaluate", input_hash="i2")
    assert again.status is RunStatus.RUNNING
    assert again.error is None
    registry.runs.finish_stage(run.run_id, "evaluate", output={"robust": 0.5})
    finished = registry.runs.finish(run.run_id)
    assert finished.status is RunStatus.SUCCEEDED
    assert [(s.name, s.status) for s in registry.runs.stages(run.run_id)] == [
        ("train", RunStatus.SUCCEEDED),
        ("evaluate", RunStatus.SUCCEEDED),
    ]
    latest = registry.runs.latest("digits", config_hash="c" * 64)
    assert latest is not None
    assert latest.run_id == run.run_id
    assert registry.audit.verify().ok


def test_run_errors_name_what_is_missing(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="no pipeline run 'nope'"):
        registry.runs.start_stage("nope", "train", input_hash="x")
    run = registry.runs.start("p", config_hash="c", run_id="run-1")
    with pytest.raises(RegistryError, match="already exists"):
        registry.runs.start("p", config_hash="c", run_id="run-1")
    with pytest.raises(NotFoundError, match="never started"):
        registry.runs.finish_stage(run.run_id, "train")
    with pytest.raises(RegistryError, match="finishes as one of"):
        registry.runs.finish(run.run_id, "running")


def test_review_queue_add_list_label_export(registry: Registry, tmp_path: Path) -> None:
    for i in range(3):
        registry.review.add(
            f"req-{i}",
            inputs={"pixels": [[0.0, 0.5]]},
            outputs={"label": "3", "probabilities": [0.2, 0.8]},
            scores={"detector": 0.93},
            reasons=["detector score above 0.9"],
            model="digits:2",
        )
    with pytest.raises(RegistryError, match="already in the review queue"):
        registry.review.add("req-0", inputs={}, outputs={})
    labelled = registry.review.label("req-1", "8", labelled_by="alice")
    assert labelled.status is ReviewStatus.LABELLED
    assert labelled.labelled_by == "alice"
    assert labelled.labelled_at is not None
    assert [i.request_id for i in registry.review.list(status="pending")] == ["req-0", "req-2"]
    assert [i.request_id for i in registry.review.list(limit=1)] == ["req-0"]
    with pytest.raises(NotFoundError):
        registry.review.label("req-9", "1")
    with pytest.raises(RegistryError, match="label must be"):
        registry.review.label("req-0", " ")

    out = tmp_path / "exports" / "labelled.jsonl"
    exported = registry.review.export(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == exported
    assert [(x["request_id"], x["label"], x["labelled_by"]) for x in lines] == [
        ("req-1", "8", "alice")
    ]
    assert lines[0]["scores"] == {"detector": 0.93}
    assert len(registry.review.export(status=None)) == 3


def _new(request_id: str) -> NewReviewItem:
    return NewReviewItem(
        request_id=request_id,
        inputs={"raw": [1.0, 2.0]},
        outputs={"label": "a"},
        scores={"detect.squeeze": 0.9},
        reasons=["detect.squeeze"],
        model="digits:1",
    )


def test_add_many_writes_one_transaction_audited_per_row(registry: Registry) -> None:
    registry.review.add("r0", inputs=[0], outputs={})
    before = registry.audit.verify().entries
    items = registry.review.add_many([_new("r1"), _new("r2"), _new("r3")])
    assert [i.request_id for i in items] == ["r1", "r2", "r3"]
    assert all(i.status is ReviewStatus.PENDING and i.model == "digits:1" for i in items)
    assert [i.request_id for i in registry.review.list()] == ["r0", "r1", "r2", "r3"]
    log = registry.audit.log(entity="review_items")
    assert [e.action for e in log] == ["review.add"] * 4
    assert len({e.at for e in log[1:]}) == 1  # one transaction: one timestamp
    report = registry.audit.verify()
    assert report.ok
    assert report.entries == before + 3
    assert registry.review.add_many([]) == []


def test_add_many_is_all_or_nothing(registry: Registry) -> None:
    registry.review.add_many([_new("r1")])
    head = registry.audit.verify().head
    with pytest.raises(RegistryError, match="'r1' is already in the review queue"):
        registry.review.add_many([_new("r2"), _new("r1")])
    with pytest.raises(RegistryError, match=r"more than once: \['r3'\]"):
        registry.review.add_many([_new("r3"), _new("r3")])
    with pytest.raises(RegistryError, match=r"review inputs\.x is nan"):
        registry.review.add_many(
            [_new("r4"), NewReviewItem(request_id="r5", inputs={"x": float("nan")}, outputs={})]
        )
    assert [i.request_id for i in registry.review.list()] == ["r1"]
    assert registry.audit.verify().head == head
