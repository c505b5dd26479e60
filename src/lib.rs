//! portico: one binary for the whole web edge.
//!
//! This crate is the library behind the `portico` binary. The module map, top to bottom in the
//! dependency direction (imports point down this list; something lower that must reach higher
//! sends a message over a channel instead of calling up):
//!
//! | layer | modules | what they hold |
//! |---|---|---|
//! | orchestration | [`cli`], [`process`], [`admin`] | subcommands; master and workers, signals, ctl, runtime; the admin API the master serves |
//! | configuration | [`config`] | TOML schema, diagnostics with lines, resolution into `Settings`, demo |
//! | listeners | [`edge`] | the HTTP front: connections, limits, routing, the request phases |
//! | route work | [`files`], [`proxy`], [`cache`] | a site's root folder: path safety, static files, listings; forwarding to origins, tunnels, the forward proxy; the shared HTTP cache and its purges |
//! | shared machinery | [`lb`] | upstream pools: balancing policies, sticky sessions, active and passive health |
//! | foundations | [`http`], [`net`], [`fs`], [`tls`], [`telemetry`] | bodies, conditional requests, ranges, compression, framing; sockets; atomic file writes; TLS certificates and SNI; logs and counters |
//!
//! `config` is read by `cli` only and produces each module's `Settings`; no other module reads
//! TOML. Modules that later issues add (cache, session, auth, dns, admin, fleet, client) slot
//! into the same layers; see `docs/ARCHITECTURE.md`.

pub mod admin;
pub mod cache;
pub mod cli;
pub mod config;
pub mod edge;
pub mod files;
pub mod fs;
pub mod http;
pub mod lb;
pub mod net;
pub mod process;
pub mod proxy;
pub mod telemetry;
pub mod tls;
