"""Providers: inbound integrations of a tenant, with their signing keys."""
