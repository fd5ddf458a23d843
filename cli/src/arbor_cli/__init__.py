"""The operator command line (``arbor``) and the demo company simulator."""
