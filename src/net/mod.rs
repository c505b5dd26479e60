//! Sockets shared by every listener.
