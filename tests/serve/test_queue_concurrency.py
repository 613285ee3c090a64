"""N concurrent flagged requests give exactly N review-queue rows (PGD inputs, detector on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import torch
from fastapi import FastAPI
from tests.serve.conftest import client, run

from bastion import attacks
from bastion.attacks import ImageAttack
from bastion.config.serve import DetectLayer
from bastion.data import Dataset
from bastion.registry import Registry

N = 24


def test_concurrent_flagged_requests_each_land_in_the_queue_once(
    make_app: Callable[..., FastAPI],
    registry: Registry,
    digits: Dataset,
    digits_cnn: torch.nn.Module,
) -> None:
    app = make_app(layers=[DetectLayer(name="detect")], require_api_key=False)
    x, y = digits.test.tensors()
    pgd = cast(ImageAttack, attacks.create("pgd", eps=0.3, steps=20, seed=0))
    x_adv = pgd(digits_cnn, x[:60], y[:60])
    flagged = [i for i, v in enumerate(app.state.service.guard(x_adv)) if v.flagged]
    assert len(flagged) >= N, "the detector should flag most PGD inputs"
    bodies = [{"input": (x_adv[i] * 16).tolist()} for i in flagged[:N]]

    async def go() -> list[Any]:
        async with client(app) as http:
            return await asyncio.gather(*[http.post("/v1/predict", json=b) for b in bodies])

    responses = run(go())
    assert [r.status_code for r in responses] == [200] * N
    assert all(r.json()["predictions"][0]["flagged"] for r in responses)
    rows = registry.review.list()
    assert len(rows) == N
    assert {row.request_id for row in rows} == {r.json()["request_id"] for r in responses}
    assert all(any(reason.startswith("detect.") for reason in row.reasons) for row in rows)
    assert registry.audit.verify().ok
