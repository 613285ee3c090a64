"""Alembic scripts for the registry schema, applied by ``bastion.registry.migrate``."""
