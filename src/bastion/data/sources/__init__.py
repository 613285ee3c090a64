"""The built-in loaders; importing this package registers them by name."""

from __future__ import annotations

from bastion.data.sources import csv_file, digits, mnist, npz

__all__ = ["csv_file", "digits", "mnist", "npz"]
