"""People (learners) and the identifiers that name them."""
