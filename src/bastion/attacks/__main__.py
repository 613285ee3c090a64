"""``python -m bastion.attacks``: regenerate the committed ``MANIFEST.json`` after an attack's
version (and ``LIBRARY_VERSION``) changed; prints the path written."""

from __future__ import annotations

from bastion.attacks import write_manifest

if __name__ == "__main__":
    print(write_manifest())
