"""The version of provenance, in one place."""

__version__ = "0.1.0"
