"""Countries as ISO 3166-1 alpha-3 codes (what SDTM DM.COUNTRY and TS hold), from pycountry's ISO tables."""

from __future__ import annotations

import pycountry

from immunosep.errors import ImmunoSepError


def country_alpha3(name_or_code: str) -> str:
    """The alpha-3 code of a country given by its English name or an ISO code ("Greece" -> "GRC")."""
    try:
        return str(pycountry.countries.lookup(name_or_code.strip()).alpha_3)
    except LookupError:
        raise ImmunoSepError(f"{name_or_code!r} is not a country of ISO 3166-1", field="country") from None


def alpha3_code(code: str) -> str:
    """A country code as typed, checked to be an ISO 3166-1 alpha-3 code ("grc" -> "GRC")."""
    value = code.strip().upper()
    if len(value) != 3 or pycountry.countries.get(alpha_3=value) is None:
        raise ImmunoSepError(
            f"the country is an ISO 3166-1 alpha-3 code such as GRC (got {code!r})", field="country"
        )
    return value
