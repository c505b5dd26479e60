//! Signals (stub).
