//! The resolved settings of one upstream pool: its members, the balancing policy, sticky
//! sessions and the health checks. Built by `config` (or directly in tests); every value here
//! is already valid.

use std::time::Duration;

use http::StatusCode;
use http::uri::Authority;

/// One pool of origin servers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The pool's name (`[[upstream]] name`), for logs.
    pub name: String,
    /// The members, in configuration order; at least one.
    pub members: Vec<MemberSettings>,
    /// How a member is chosen for a request.
    pub policy: Policy,
    /// Sticky sessions: the cookie that pins a client to a member.
    pub sticky_cookie: Option<String>,
    /// Active checks: a request to each member at an interval.
    pub active: Option<ActiveHealth>,
    /// Passive checks: ejection after consecutive failures of real requests.
    pub passive: PassiveHealth,
}

/// One member of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSettings {
    /// `host:port`; the host is an IP address or a name resolved when connecting.
    pub authority: Authority,
    /// Relative share of the requests, 1 to 100.
    pub weight: u32,
}

/// A balancing policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Smooth weighted round robin (nginx's): each member in turn, as often as its weight.
    RoundRobin,
    /// The member with the fewest requests in flight relative to its weight.
    LeastConn,
    /// Consistent hashing of a request key on a ring with virtual nodes: a key keeps its
    /// member, and only the keys of a member that leaves move.
    Hash(HashKey),
    /// Power of two choices: of two members picked at random, the one whose moving average of
    /// latency, times its requests in flight, is lower.
    P2c,
}

/// What the consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The request target (path and query).
    Uri,
    /// A request header's value (the name lower-case).
    Header(http::HeaderName),
    /// A cookie's value.
    Cookie(String),
    /// The client's IP address.
    ClientIp,
}

/// Active health checks (`[upstream.health]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHealth {
    /// The path requested with GET.
    pub path: String,
    /// Time between two checks of a member.
    pub interval: Duration,
    /// How long a check may take (connect and response head).
    pub timeout: Duration,
    /// The status a healthy member answers; `None`: any 2xx or 3xx.
    pub status: Option<StatusCode>,
    /// Consecutive passed checks that bring a member back.
    pub rise: u32,
    /// Consecutive failed checks that take a member out.
    pub fall: u32,
}

/// Passive health checks: what real requests tell about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Consecutive errors or timeouts that eject a member; 0 turns passive checks off.
    pub max_fails: u32,
    /// How long the first ejection lasts; each further ejection without a success in between
    /// lasts twice as long, up to [`MAX_EJECTION`].
    pub fail_timeout: Duration,
}

/// The longest a passive ejection lasts.
pub const MAX_EJECTION: Duration = Duration::from_secs(300);

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        }
    }
}

impl Settings {
    /// A pool of `members` with equal weights, round robin, no sticky cookie, no active
    /// checks, default passive checks.
    pub fn new(name: impl Into<String>, members: Vec<Authority>) -> Self {
        Settings {
            name: name.into(),
            members: members
                .into_iter()
                .map(|authority| MemberSettings {
                    authority,
                    weight: 1,
                })
                .collect(),
            policy: Policy::RoundRobin,
            sticky_cookie: None,
            active: None,
            passive: PassiveHealth::default(),
        }
    }
}
