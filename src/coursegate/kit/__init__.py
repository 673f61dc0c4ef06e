"""Code with no domain in it: clock, ids, errors, pagination, logging, HTTP plumbing."""
