"""Which version was in production before this one — computed from the stage history alone.

The history is a sequence of changes; treating production as a stack makes repeated
rollbacks walk back through releases instead of bouncing between the last two: a
promotion to production pushes a version, a rollback pops the current one. Pure functions,
so the rule is tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.registry.records import Stage, StageChangeKind

__all__ = ["production_stack"]


def production_stack(changes: Iterable[tuple[int, Stage, StageChangeKind]]) -> list[int]:
    """The production stack after ``changes`` (oldest first) of one model name.

    Each change is ``(version, to_stage, kind)``. The last element of the result is the
    version in production now (if any change put one there); the one before it is where a
    rollback goes.
    """
    stack: list[int] = []
    for version, to_stage, kind in changes:
        if to_stage is not Stage.PRODUCTION:
            continue
        if kind is StageChangeKind.ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != version:
                # History edited by hand or versions restored out of order: trust the record.
                stack.append(version)
        else:
            stack.append(version)
    return stack
