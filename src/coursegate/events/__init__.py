"""The event outbox: facts recorded in the transaction that made them true."""
