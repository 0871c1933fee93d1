"""The domain layer: pydantic models, office configuration and pure mapping rules.

Nothing here talks to a network, a database or Temporal, so every rule is unit-tested without servers.
"""
