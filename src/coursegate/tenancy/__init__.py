"""Tenants, their API keys, and the authentication every admin route stands on."""
