//! Access log (stub).
