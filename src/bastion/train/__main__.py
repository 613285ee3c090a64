"""``python -m bastion.train --config FILE [--out DIR] [--resume]``: the entry ``torchrun``
starts on every rank (``bastion train --nproc N`` launches exactly this)."""

from __future__ import annotations

import sys

from bastion.train.job import main

if __name__ == "__main__":
    sys.exit(main())
