"""Reading an evaluation record as evidence that an attack no longer works on given samples.

The registry stores evaluation records as JSON and must not import ``bastion.evaluate``
(it sits above the registry), so this module names the few fields it relies on. The shape
(``EvaluationRecord.to_dict()`` produces it; only ``attacks`` is required)::

    {
      "attacks": [                      # one entry per attack run; names may repeat
        {"name": "pgd", "version": "1.0", "broken_ids": [17, 40]},
        ...
      ],
      "sample_ids": [0, 1, 2, ...],     # optional: every sample id the evaluation covered
      "robust_mask": "0110...",         # optional: per sample_ids entry, "1" = clean-correct
                                        # and unbroken by every attack (or a list of bools)
      "dataset_fingerprint": "…"        # optional
    }

``broken_ids`` are the ids of the samples that attack fooled. A sample counts as fixed only
if the evaluation shows it: the attack ran, the sample was covered (when ``sample_ids`` is
given), no entry with the attack's name broke it, and — because a lazy evaluation never
runs a later attack on a sample an earlier one already broke, and never attacks a sample
the model gets wrong anyway — the sample stood against the whole suite (``robust_mask``
when given; otherwise, at least no other attack broke it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.errors import RegistryError

__all__ = ["FixCheck", "attack_broken_ids", "check_attack_fixed"]


@dataclass(frozen=True, slots=True)
class FixCheck:
    """Whether the evidence shows the attack fixed on the samples, and every reason not."""

    fixed: bool
    reasons: tuple[str, ...]
    attack_versions: tuple[str, ...]


def _ids(value: Any, where: str) -> list[int]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise RegistryError(f"{where} must be a list of integer sample ids")
    out: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise RegistryError(f"{where} must hold integer sample ids, found {item!r}")
        out.append(item)
    return out


def _attacks(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    attacks = record.get("attacks")
    if not isinstance(attacks, Sequence) or isinstance(attacks, str):
        raise RegistryError(
            "the evaluation record has no 'attacks' list; expected "
            '{"attacks": [{"name": ..., "broken_ids": [...]}, ...]}'
        )
    out: list[Mapping[str, Any]] = []
    for i, entry in enumerate(attacks):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise RegistryError(f"evaluation record attacks[{i}] must be a mapping with a 'name'")
        if "broken_ids" not in entry:
            raise RegistryError(
                f"evaluation record attacks[{i}] ({entry['name']}) has no 'broken_ids'"
            )
        out.append(entry)
    return out


def attack_broken_ids(record: Mapping[str, Any]) -> dict[str, set[int]]:
    """Attack name → ids of the samples any run of that attack broke."""
    broken: dict[str, set[int]] = {}
    for i, entry in enumerate(_attacks(record)):
        ids = _ids(entry["broken_ids"], f"evaluation record attacks[{i}].broken_ids")
        broken.setdefault(str(entry["name"]), set()).update(ids)
    return broken


def _robust(record: Mapping[str, Any], covered: list[int]) -> set[int] | None:
    mask = record.get("robust_mask")
    if mask is None:
        return None
    if isinstance(mask, str):
        if set(mask) - {"0", "1"}:
            raise RegistryError("evaluation record robust_mask must be a string of 0 and 1")
        flags = [c == "1" for c in mask]
    elif isinstance(mask, Sequence):
        flags = [bool(x) for x in mask]
    else:
        raise RegistryError("evaluation record robust_mask must be a 0/1 string or a list")
    if len(flags) != len(covered):
        raise RegistryError(
            f"evaluation record robust_mask has {len(flags)} entries for {len(covered)} sample_ids"
        )
    return {i for i, robust in zip(covered, flags, strict=True) if robust}


def check_attack_fixed(
    record: Mapping[str, Any], *, attack: str, sample_ids: Sequence[int]
) -> FixCheck:
    """Does ``record`` show that ``attack`` no longer succeeds on ``sample_ids``?"""
    wanted = sorted(set(_ids(list(sample_ids), "reproduction sample_ids")))
    if not wanted:
        raise RegistryError("a reproduction must name at least one sample id")
    entries = _attacks(record)
    broken = attack_broken_ids(record)
    versions = tuple(
        sorted({str(e.get("version")) for e in entries if e["name"] == attack and e.get("version")})
    )
    reasons: list[str] = []
    if attack not in broken:
        ran = ", ".join(sorted(broken)) or "none"
        reasons.append(f"the evaluation did not run {attack!r} (it ran: {ran})")
        return FixCheck(fixed=False, reasons=tuple(reasons), attack_versions=versions)
    covered: set[int] | None = None
    robust: set[int] | None = None
    if record.get("sample_ids") is not None:
        listed_ids = _ids(record["sample_ids"], "evaluation record sample_ids")
        covered = set(listed_ids)
        missing = [i for i in wanted if i not in covered]
        if missing:
            reasons.append(f"the evaluation did not cover samples {missing}")
        robust = _robust(record, listed_ids)
    still = sorted(set(wanted) & broken[attack])
    if still:
        reasons.append(f"{attack!r} still breaks samples {still}")
    others = {
        i: sorted(name for name, ids in broken.items() if name != attack and i in ids)
        for i in wanted
    }
    by_others = {i: names for i, names in others.items() if names and i not in still}
    if by_others:
        listed = "; ".join(f"{i} by {', '.join(n)}" for i, n in sorted(by_others.items()))
        reasons.append(
            f"other attacks broke samples first ({listed}), so whether {attack!r} still "
            "succeeds on them was not tested"
        )
    if robust is not None and covered is not None:
        flagged = set(still) | set(by_others)
        weak = [i for i in wanted if i not in robust and i not in flagged and i in covered]
        if weak:
            reasons.append(
                f"samples {weak} are not robust in this evaluation (misclassified without "
                f"attack), so {attack!r} was not tested on them"
            )
    return FixCheck(fixed=not reasons, reasons=tuple(reasons), attack_versions=versions)
