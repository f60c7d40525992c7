"""funcemu: a pure-Python local host for Azure Functions Python v2 apps with Durable Functions."""

__version__ = "0.1.0"
__all__ = ["__version__"]
