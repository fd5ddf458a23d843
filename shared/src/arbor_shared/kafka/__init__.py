"""Kafka plumbing: explicit client settings, the outbox relay and the consumer loop."""
