"""When each invoice's cancellation commits, seen from outside the service.

A trigger the benchmark adds to dunning's ``steps`` table sends a NOTIFY for every
step cancelled because its invoice was settled; the arrival of the first for an
invoice marks the commit of its cancellation (``bench.common.Notifications``).
"""

from __future__ import annotations

from bench.common import Notifications

_TRIGGER = """
CREATE FUNCTION "{schema}".bench_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{channel}', NEW.invoice_id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_cancelled AFTER UPDATE ON "{schema}".steps FOR EACH ROW
  WHEN (NEW.state = 'cancelled' AND NEW.cancel_reason = 'settled')
  EXECUTE FUNCTION "{schema}".bench_notify();
"""


async def watch_cancellations(
    database_url: str, schema: str, invoices: int
) -> Notifications:
    """Install the trigger in dunning's ``schema``; watch ``invoices`` invoices."""
    watch = Notifications(invoices)
    await watch.start(
        database_url, schema, _TRIGGER.format(schema=schema, channel=schema)
    )
    return watch
