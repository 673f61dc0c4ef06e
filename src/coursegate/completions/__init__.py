"""Signed inbound completions: verification, recording, audit, parking and replay."""
