"""Dunning's adapters: tables, migrations, policy documents, mail and webhooks."""
