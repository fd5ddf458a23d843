"""Where the third-party test data lives: ``../shared/data`` beside the checkout.

CI lays a copy of ``shared/`` beside its clone, as a developer's machine has it;
``ARBOR_SHARED_DATA`` points elsewhere when needed. See SOURCES.md there.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get(
        "ARBOR_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
IBM_CSV = SHARED_DATA / "ibm-accounts-receivable.csv"
STRIPE_FIXTURES = SHARED_DATA / "stripe-fixtures.json"
STRIPE_EVENT_TYPES = SHARED_DATA / "stripe-event-types.json"
