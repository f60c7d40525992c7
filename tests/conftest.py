"""Shared test setup. The funcemu fixtures (funcemu, durable_client, clock, azurite) come from the
plugin that the installed package registers (entry point `pytest11: funcemu`)."""
