"""The portal's rules: plain Python, no framework."""
