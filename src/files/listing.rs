//! Directory listings (stub).
