"""The one base of every dunning domain error, mapped to HTTP in one place."""

from __future__ import annotations


class DunningError(Exception):
    """A request dunning cannot honour; the message names the bad value."""


class PolicyNotFoundError(DunningError):
    """No policy exists for the cohort asked about."""


class InvalidPolicyError(DunningError):
    """A policy breaks a rule the request model cannot express."""


class InvalidSimulationInputError(DunningError):
    """The events or CSV given to the simulator cannot be read."""
