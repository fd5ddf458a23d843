"""Dunning rules in plain Python: policies, calendars, planning, contact rules."""
