"""The fault-injection suite (RELIABILITY "Faults and the invariant each must hold")."""

from __future__ import annotations
