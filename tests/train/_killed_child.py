"""Child process of ``test_resume.py``: trains from a config and, at the given batch, writes
a marker file and waits to be killed (so the kill lands mid-epoch, deterministically).

usage: python _killed_child.py CONFIG OUT MARKER EPOCH STEP
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bastion.config import load_config
from bastion.train import StepEvent, train_from_config


def main() -> None:
    config, out, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    at = (int(sys.argv[4]), int(sys.argv[5]))

    def wait_for_the_kill(event: StepEvent) -> None:
        if (event.epoch, event.step) == at:
            marker.write_text(f"{event.epoch} {event.step}")
            time.sleep(600)

    train_from_config(load_config(config), out_dir=out, progress=False, on_step=wait_for_the_kill)


if __name__ == "__main__":
    main()
