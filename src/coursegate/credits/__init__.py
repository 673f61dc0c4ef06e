"""The earned-credit ledger: running totals per person and program, one row per credit."""
