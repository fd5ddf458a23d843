"""Column mappings for known AR exports, chosen by name (``--mapping ibm``)."""

from __future__ import annotations

from arbor_ingest.domain.csv_import import ArCsvMapping, CountryMapping

# IBM's Watson Analytics "Accounts Receivable" sample. Its countryCode values (391,
# 406, 770, 818, 897) are not ISO 3166 numeric codes and IBM does not say what they
# are, so they stay distinct regions of one default country and zone rather than
# guessed countries. The file states no currency: the caller gives one.
_IBM_ZONE = "America/New_York"
IBM = ArCsvMapping(
    customer_id="customerID",
    invoice_id="invoiceNumber",
    issue_date="InvoiceDate",
    due_date="DueDate",
    amount="InvoiceAmount",
    settled_date="SettledDate",
    disputed="Disputed",
    country_code="countryCode",
    currency="USD",
    date_format="%m/%d/%Y",
    countries={
        code: CountryMapping(country="US", region=f"ibm-{code}", time_zone=_IBM_ZONE)
        for code in ("391", "406", "770", "818", "897")
    },
    default_country="US",
    default_time_zone=_IBM_ZONE,
)

PRESETS: dict[str, ArCsvMapping] = {"ibm": IBM}


def preset(name: str, *, currency: str | None = None) -> ArCsvMapping:
    """The named mapping, with the file's currency when the caller states one.

    Raises KeyError naming the known presets.
    """
    try:
        mapping = PRESETS[name]
    except KeyError:
        raise KeyError(
            f"no mapping preset {name!r}; known: {', '.join(sorted(PRESETS))}"
        ) from None
    if currency is None:
        return mapping
    return ArCsvMapping.model_validate(mapping.model_dump() | {"currency": currency})
