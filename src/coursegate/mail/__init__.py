"""Operational email: a send queue in the database, drained over SMTP by a worker."""
