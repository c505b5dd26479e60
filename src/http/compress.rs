//! (compress: stub)
