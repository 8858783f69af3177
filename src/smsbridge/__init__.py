"""smsbridge: a self-hosted SMS channel that sends through any HTTP SMS provider."""

__version__ = "0.1.0"
