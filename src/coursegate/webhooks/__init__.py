"""Outbound webhooks: endpoints, fan-out, dispatch, enrichment."""
