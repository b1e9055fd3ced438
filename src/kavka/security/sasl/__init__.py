"""SASL mechanisms a SASL listener serves (each a small state machine fed the client's tokens),
and the per-connection session that runs them (``session.py``)."""

from __future__ import annotations


class AuthenticationFailed(Exception):
    """The client's credentials or token were refused (SASL_AUTHENTICATION_FAILED)."""


class IllegalSaslState(Exception):
    """A token the mechanism cannot take in its state (a frame out of order or cut short)."""
