//! (conditional: stub)
