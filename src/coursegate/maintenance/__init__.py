"""Operator work on the stored data itself: backups of the embedded database, master key rotation."""
