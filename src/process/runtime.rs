//! Runtime (stub).
