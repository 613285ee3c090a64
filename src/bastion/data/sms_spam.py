"""The SMS Spam Collection (Almeida & Gómez Hidalgo 2011): the text channel's real dataset.

A spam filter is the classic target of evasion — the attacker controls the message and wants
it delivered — so this is where the text attacks, the sanitiser and adversarial training are
measured. The file has one message per line, ``ham<TAB>text`` or ``spam<TAB>text``, UTF-8.
Every line is checked here so that a damaged copy is reported by line number rather than
silently losing rows; the shared stratified split then applies as for every dataset.

    data:
      name: sms_spam
      path: ../shared/data/sms_spam      # the folder, or the SMSSpamCollection file itself
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.config import Channel, DataConfig, Section
from bastion.data.fingerprint import fingerprint_arrays
from bastion.data.raw import RawData
from bastion.data.registry import register_loader
from bastion.data.sources._common import parse_options, require_path
from bastion.errors import DataError

__all__ = ["CLASSES", "FILE_NAME", "load", "read_messages"]

#: Class names in label order: ``ham`` is 0, ``spam`` (the class an attacker wants to hide) 1.
CLASSES = ("ham", "spam")
FILE_NAME = "SMSSpamCollection"


class SmsSpamOptions(Section):
    """The sms_spam loader takes no options."""


def read_messages(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(messages, labels)`` from an SMSSpamCollection file (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found (expected the {FILE_NAME} file)") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    messages: list[str] = []
    labels: list[int] = []
    lookup = {name: i for i, name in enumerate(CLASSES)}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, tab, message = line.partition("\t")
        if not tab:
            raise DataError(f"{path}: line {number} has no tab between label and message")
        if label not in lookup:
            raise DataError(
                f"{path}: line {number} has label {label[:20]!r}; expected 'ham' or 'spam'"
            )
        if not message.strip():
            raise DataError(f"{path}: line {number} has an empty message")
        messages.append(message)
        labels.append(lookup[label])
    if not messages:
        raise DataError(f"{path}: the file holds no messages")
    return messages, np.asarray(labels, dtype=np.int64)


@register_loader("sms_spam")
def load(config: DataConfig) -> RawData:
    """5,574 messages as an object array of ``str``; classes ``("ham", "spam")``."""
    parse_options(SmsSpamOptions, config)
    path = require_path(config, f"the sms_spam folder or its {FILE_NAME} file")
    messages, labels = read_messages(path)
    x = np.empty(len(messages), dtype=object)
    x[:] = messages
    return RawData(
        x=x,
        y=labels,
        classes=CLASSES,
        modality=Channel.TEXT,
        fingerprint=fingerprint_arrays(messages=x, labels=labels),
        source=str(path),
        input_scaling={"scale": 1.0},
        meta={"loader": "sms_spam", "spam": int(labels.sum()), "ham": int((labels == 0).sum())},
    )
