//! Logging (stub).
