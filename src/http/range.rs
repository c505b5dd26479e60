//! (range: stub)
