"""Concurrent writers — threads and separate processes — neither corrupt nor lose records.

Every writer registers versions of one model name (so they fight over the next version
number) and adds risks; afterwards the versions must be exactly 1..N, every record present,
and the audit chain intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from bastion.registry import Registry

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bastion.registry import Registry

    url, store, tag, count, go = sys.argv[1:6]
    deadline = time.monotonic() + 60
    while not Path(go).exists():  # start together
        if time.monotonic() > deadline:
            sys.exit("never told to start")
        time.sleep(0.01)
    artifact = Path(store).parent / f"artifact-{tag}"
    artifact.mkdir()
    (artifact / "weights.pt").write_text(tag)
    with Registry.open(url=url, artifacts=store, actor=f"worker-{tag}") as registry:
        for i in range(int(count)):
            registry.models.register("shared", artifact=artifact, config={"tag": tag, "i": i})
            registry.risks.add(f"{tag}-{i}", likelihood=1, impact=1, owner=tag)
    """
)


def _check(registry: Registry, writers: int, per_writer: int) -> None:
    total = writers * per_writer
    versions = [m.version for m in registry.models.list("shared")]
    assert versions == list(range(1, total + 1))
    tags = sorted((m.config["tag"], m.config["i"]) for m in registry.models.list("shared"))
    assert tags == sorted((str(w), i) for w in range(writers) for i in range(per_writer))
    assert len(registry.risks.list()) == total
    report = registry.audit.verify()
    assert report.problems == ()
    assert report.entries == 2 * total


def test_threads_sharing_one_registry(registry: Registry, tmp_path: Path) -> None:
    writers, per_writer = 4, 5
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def work(tag: int) -> None:
        try:
            artifact = tmp_path / f"artifact-{tag}"
            artifact.mkdir()
            (artifact / "weights.pt").write_text(str(tag))
            start.wait()
            for i in range(per_writer):
                registry.models.register(
                    "shared", artifact=artifact, config={"tag": str(tag), "i": i}
                )
                registry.risks.add(f"{tag}-{i}", likelihood=1, impact=1, owner=str(tag))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    _check(registry, writers, per_writer)


def test_separate_processes_on_a_fresh_database(db_url: str, tmp_path: Path) -> None:
    """Processes start at once on a database nobody has opened: migration races too."""
    writers, per_writer = 3, 5
    store = tmp_path / "store"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(store), str(w), str(per_writer), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    time.sleep(0.5)
    go.touch()
    failures = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            failures.append(err[-2000:])
    assert failures == []
    with Registry.open(url=db_url, artifacts=store) as registry:
        _check(registry, writers, per_writer)
        assert {e.actor for e in registry.audit.log()} == {f"worker-{w}" for w in range(writers)}


def test_interleaved_promotions_keep_one_production_version(
    registry: Registry, tmp_path: Path
) -> None:
    writers = 2
    artifact = tmp_path / "a"
    artifact.mkdir()
    (artifact / "w").write_text("x")
    for _ in range(6):
        registry.models.register("m", artifact=artifact)
    errors: list[BaseException] = []

    def promote(versions: list[int]) -> None:
        try:
            for v in versions:
                registry.models.promote(f"m:{v}", "production", reason="race")
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=promote, args=([v for v in range(1, 7) if v % writers == w],))
        for w in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stages = [m.stage.value for m in registry.models.list("m")]
    assert stages.count("production") == 1
    assert stages.count("archived") == 5
    assert registry.audit.verify().ok
