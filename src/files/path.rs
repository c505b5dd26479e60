//! URL path to file path (stub).
