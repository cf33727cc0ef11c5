"""Wiring, the CLI and deployments of the three reference assistants."""
