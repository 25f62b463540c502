"""Channels: thin adapters from a messenger's updates to `Inbound` and from `Outbound` to its API."""
