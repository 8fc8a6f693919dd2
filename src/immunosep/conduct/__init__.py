"""Trial operations as services, one module per operation, each a transaction."""

# The hook that invalidates an electronic signature in the transaction of a change to what it covers is
# installed on the trial sessions when any service is imported (conduct.casebook, at its import).
from immunosep.conduct import casebook as _casebook  # noqa: F401
