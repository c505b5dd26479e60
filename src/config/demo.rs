//! Built-in demo (stub).
