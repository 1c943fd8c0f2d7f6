"""hrlc: the production system of the ESA CCI High Resolution Land Cover ECV."""

__version__ = "0.1.0"
