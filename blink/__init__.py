"""Blink: realtime BTC-USD anomaly detector."""

__version__ = "0.1.0"
