"""The definition seeded and activated on first start."""

from __future__ import annotations

DEFAULT_COHORT = "standard"

SEED_RULES: tuple[tuple[str, int, str, str | None], ...] = (
    (
        "disputers",
        10,
        "disputes_open > 0 || disputes_lost >= 2"
        " || (disputes_total >= 3 && dispute_rate >= 0.4)",
        None,
    ),
    (
        "chronic-late",
        20,
        "invoices_due_365 >= 3 && on_time_rate_365 < 0.5 && avg_days_late >= 5.0",
        None,
    ),
    (
        "at-risk",
        30,
        "overdue_invoices > 0 || promises_broken > 0 || max_late_probability >= 0.7",
        None,
    ),
    (
        "punctual-annual",
        40,
        'billing_cycle == "annual" && invoices_settled >= 1 && on_time_rate_all >= 0.9',
        None,
    ),
    (
        "punctual-electronic",
        50,
        "invoices_settled >= 3 && on_time_rate_365 >= 0.9"
        ' && preferred_channel == "email"',
        None,
    ),
    (
        "punctual",
        55,
        "invoices_settled >= 3 && on_time_rate_365 >= 0.9",
        None,
    ),
    ("direct-debit", 60, 'payment_method == "direct_debit"', None),
    ("new-customers", 70, "tenure_days < 90 && invoices_settled == 0", None),
)
