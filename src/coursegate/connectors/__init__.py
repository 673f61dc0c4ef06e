"""Pull connectors: their configuration (SPEC §4, §7)."""
