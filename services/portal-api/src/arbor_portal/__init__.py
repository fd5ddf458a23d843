"""Portal API: what customers see of their account and what they do about it."""
