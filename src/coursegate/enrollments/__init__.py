"""Enrollments: assignment through a compensated saga, their transitions and lifecycle (SPEC §3, §6)."""
