"""The one base error. Subclasses live next to the code that raises them."""


class FuncemuError(Exception):
    """An error meant for a person: the CLI prints its message and exits with status 1."""
