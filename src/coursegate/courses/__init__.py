"""Courses and the seats bought for them (SPEC §1, §3)."""
