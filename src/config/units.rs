//! Units (stub).
