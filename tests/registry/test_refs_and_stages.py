"""Reference parsing and the production-stack rule behind rollback (no database needed)."""

from __future__ import annotations

import pytest

from bastion.errors import NotFoundError, RegistryError
from bastion.registry import ModelRef, Stage, StageChangeKind, parse_ref
from bastion.registry.stages import production_stack


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digits:3", ModelRef(name="digits", version=3)),
        ("digits@production", ModelRef(name="digits", stage=Stage.PRODUCTION)),
        ("digits@Staging", ModelRef(name="digits", stage=Stage.STAGING)),
        ("my-model.v2_x", ModelRef(name="my-model.v2_x")),
        (" digits:12 ", ModelRef(name="digits", version=12)),
    ],
)
def test_parse_ref_accepts_the_three_forms(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected
    assert parse_ref(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("digits:0", "positive integer"),
        ("digits:x", "positive integer"),
        ("digits:²", "positive integer"),
        ("digits:", "positive integer"),
        ("digits@live", "stage"),
        ("-bad:1", "expected NAME:VERSION"),
        ("", "expected NAME:VERSION"),
        ("a b:1", "expected NAME:VERSION"),
    ],
)
def test_parse_ref_rejects_malformed_text_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(RegistryError, match=fragment) as info:
        parse_ref(text)
    assert not isinstance(info.value, NotFoundError)


def test_bare_name_can_be_refused() -> None:
    with pytest.raises(RegistryError, match="NAME:VERSION or NAME@STAGE"):
        parse_ref("digits", allow_bare=False)


P, R, A = StageChangeKind.PROMOTE, StageChangeKind.ROLLBACK, StageChangeKind.ARCHIVE


def test_production_stack_walks_back_through_releases() -> None:
    prod, arch = Stage.PRODUCTION, Stage.ARCHIVED
    history = [(1, prod, P), (1, arch, A), (2, prod, P), (2, arch, A), (3, prod, P)]
    assert production_stack(history) == [1, 2, 3]
    # A rollback to 2 pops 3; a second rollback must reach 1, not bounce back to 3.
    history += [(3, arch, A), (2, prod, R)]
    assert production_stack(history) == [1, 2]
    history += [(2, arch, A), (1, prod, R)]
    assert production_stack(history) == [1]


def test_production_stack_ignores_other_stages() -> None:
    history = [(1, Stage.STAGING, P), (1, Stage.PRODUCTION, P), (2, Stage.STAGING, P)]
    assert production_stack(history) == [1]
