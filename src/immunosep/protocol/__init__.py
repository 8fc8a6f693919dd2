"""The trial protocol as data: a pydantic schema and the bundled ImmunoSep protocol file."""

from immunosep.protocol.loader import bundled_protocol_path, default_protocol, load_protocol, parse_protocol
from immunosep.protocol.schema import Protocol, RegimenItem, SofaEndpoint

__all__ = [
    "Protocol",
    "RegimenItem",
    "SofaEndpoint",
    "bundled_protocol_path",
    "default_protocol",
    "load_protocol",
    "parse_protocol",
]
