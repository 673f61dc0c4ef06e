"""coursegate: the integration hub of education programs."""

__version__ = "0.1.0"
