//! (error_page: stub)
