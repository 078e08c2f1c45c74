"""smartscope: smart microscopy with Pycro-Manager and an int8 SGAN nucleus classifier."""

__version__ = "0.1.0"
