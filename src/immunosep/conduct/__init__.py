"""Trial operations as services, one module per operation, each a transaction."""
