"""The trial protocol as data: a pydantic schema and the bundled ImmunoSep protocol file."""

from typing import TYPE_CHECKING

from immunosep._lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers; at run time each is imported on first use
    from immunosep.protocol.loader import (
        bundled_protocol_path,
        default_protocol,
        load_protocol,
        parse_protocol,
    )
    from immunosep.protocol.schema import (
        Protocol,
        RegimenItem,
        SofaEndpoint,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "loader": (
            "bundled_protocol_path",
            "default_protocol",
            "load_protocol",
            "parse_protocol",
        ),
        "schema": (
            "Protocol",
            "RegimenItem",
            "SofaEndpoint",
        ),
    },
)
