//! A pool at run time: its members with their live state (requests in flight, latency
//! average, health), the policy that chooses among them, and the lease a request holds on the
//! member it was sent to.
//!
//! One `Pool` per upstream per worker process: counts of requests in flight, latencies and
//! health are what this worker saw (as nginx without a shared `zone`). Everything here is
//! atomics, so choosing a member takes no lock.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;

use super::health::{Health, Outcome};
use super::policy::{self, Policy};
use super::settings::{ActiveHealth, MemberSettings, Settings};

/// A pool of members and how to choose one.
pub struct Pool {
    name: String,
    members: Vec<Member>,
    policy: Box<dyn Policy>,
    sticky_cookie: Option<String>,
    active: Option<ActiveHealth>,
    /// Where the pool's millisecond clock starts (passive ejections are stored as offsets).
    epoch: Instant,
    /// The choice depends on the request (a hash of its fields, a sticky cookie).
    reads_request: bool,
}

/// One member and what this worker knows about it.
pub struct Member {
    pub settings: MemberSettings,
    /// A stable id for sticky cookies: a hash of the address, so the cookie does not reveal it.
    pub id: String,
    in_flight: AtomicUsize,
    /// Moving average of the time to a response head, in microseconds (as `f64` bits); 0 until
    /// the first response.
    latency_us: AtomicU64,
    pub(super) health: Health,
}

/// What a policy may look at in a request.
pub struct Subject<'a> {
    pub parts: &'a http::request::Parts,
    pub client_ip: IpAddr,
}

/// A request's hold on the member it was sent to: counted in flight until dropped.
pub struct Lease {
    pool: Arc<Pool>,
    index: usize,
    started: Instant,
}

/// Weight of a new latency sample in the moving average.
const LATENCY_ALPHA: f64 = 0.2;

impl Pool {
    pub fn new(mut settings: Settings) -> Self {
        // As nginx: the only member of a pool is never ejected by passive checks. Ejecting it
        // would turn a few failed requests into 503s for every request until the period ends
        // (active checks, when configured, still judge it).
        if settings.members.len() == 1 {
            settings.passive.max_fails = 0;
        }
        let policy = policy::build(&settings.policy, &settings.members);
        let reads_request =
            settings.sticky_cookie.is_some() || matches!(settings.policy, super::Policy::Hash(_));
        let members = settings
            .members
            .into_iter()
            .map(|member| Member {
                id: format!(
                    "{:016x}",
                    super::hash::hash(member.authority.as_str().as_bytes())
                ),
                settings: member,
                in_flight: AtomicUsize::new(0),
                latency_us: AtomicU64::new(0),
                health: Health::new(settings.passive.clone()),
            })
            .collect();
        Pool {
            name: settings.name,
            members,
            policy,
            sticky_cookie: settings.sticky_cookie,
            active: settings.active,
            epoch: Instant::now(),
            reads_request,
        }
    }

    /// Whether [`Pool::choose`] looks at the request's fields (consistent hashing, sticky
    /// sessions); when it does not, any `Subject` with the client's address chooses alike.
    pub fn reads_request(&self) -> bool {
        self.reads_request
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The active checks, when configured.
    pub fn active(&self) -> Option<&ActiveHealth> {
        self.active.as_ref()
    }

    /// Chooses a member for `subject` among the available ones not in `tried`: the one its
    /// sticky cookie names, else the policy's choice. `None` when no member is available.
    pub fn choose(&self, subject: &Subject<'_>, tried: &[usize]) -> Option<usize> {
        let now = self.now_ms();
        let available = |i: usize| !tried.contains(&i) && self.is_available_at(i, now);
        if let Some(index) = self.sticky_member(subject)
            && available(index)
        {
            return Some(index);
        }
        let key = self.policy.key(subject);
        self.policy.pick(&self.members, key, &available)
    }

    /// Starts a request on member `index`.
    pub fn lease(self: &Arc<Self>, index: usize) -> Lease {
        self.members[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Lease {
            pool: self.clone(),
            index,
            started: Instant::now(),
        }
    }

    /// Whether member `index` may be chosen now (healthy, not ejected).
    pub fn is_available(&self, index: usize) -> bool {
        self.is_available_at(index, self.now_ms())
    }

    /// The `Set-Cookie` value that pins a client to member `index`, when the pool has sticky
    /// sessions and the request did not already name that member.
    pub fn sticky_set_cookie(
        &self,
        subject: &Subject<'_>,
        index: usize,
        secure: bool,
    ) -> Option<HeaderValue> {
        let name = self.sticky_cookie.as_deref()?;
        if self.sticky_member(subject) == Some(index) {
            return None;
        }
        let id = &self.members.get(index)?.id;
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"
        ))
        .ok()
    }

    /// Member `index` answered an active check (`passed`); the state changes after `rise`
    /// passes or `fall` failures in a row. Returns the new state when it changed.
    pub fn record_check(&self, index: usize, passed: bool) -> Option<bool> {
        let (rise, fall) = self.active.as_ref().map_or((1, 1), |a| (a.rise, a.fall));
        self.members[index].health.record_check(passed, rise, fall)
    }

    /// The member sticky cookie names, if the request carries one that names a member.
    fn sticky_member(&self, subject: &Subject<'_>) -> Option<usize> {
        let name = self.sticky_cookie.as_deref()?;
        let id = cookie(&subject.parts.headers, name)?;
        self.members.iter().position(|m| m.id == id)
    }

    fn is_available_at(&self, index: usize, now_ms: u64) -> bool {
        self.members[index].health.is_available(now_ms)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Member {
    /// Requests in flight to this member from this worker.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Moving average of the time to a response head; zero before the first response.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(f64::from_bits(self.latency_us.load(Ordering::Relaxed)) as u64)
    }

    pub(super) fn latency_us(&self) -> f64 {
        f64::from_bits(self.latency_us.load(Ordering::Relaxed))
    }

    fn add_latency_sample(&self, sample: Duration) {
        let sample = sample.as_micros() as f64;
        let old = self.latency_us();
        let new = if old == 0.0 {
            sample
        } else {
            old + LATENCY_ALPHA * (sample - old)
        };
        // A sample lost to a concurrent update does not matter for an average.
        self.latency_us.store(new.to_bits(), Ordering::Relaxed);
    }
}

impl Lease {
    /// The member's index in the pool.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn member(&self) -> &Member {
        &self.pool.members[self.index]
    }

    /// The member answered with a response head: its latency sample, and a success for the
    /// passive checks.
    pub fn succeeded(&self) {
        let member = self.member();
        member.add_latency_sample(self.started.elapsed());
        member.health.record(Outcome::Success, self.pool.now_ms());
    }

    /// The member failed the request (connection error, timeout, broken response). Returns
    /// true when this failure ejected it.
    pub fn failed(&self) -> bool {
        let ejected = self
            .member()
            .health
            .record(Outcome::Failure, self.pool.now_ms());
        if ejected {
            tracing::warn!(
                upstream = %self.pool.name,
                member = %self.member().settings.authority,
                "member ejected after consecutive failures"
            );
        }
        ejected
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.members[self.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The value of cookie `name` in the request's `Cookie` fields (RFC 6265 §5.4).
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::settings::Policy;

    fn pool(policy: Policy, sticky: Option<&str>) -> Arc<Pool> {
        let mut settings = Settings::new(
            "test",
            vec![
                "10.0.0.1:80".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
            ],
        );
        settings.policy = policy;
        settings.sticky_cookie = sticky.map(str::to_string);
        Arc::new(Pool::new(settings))
    }

    fn parts(cookie: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::get("/");
        if let Some(cookie) = cookie {
            builder = builder.header("cookie", cookie);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_only_member_is_never_ejected_passively() {
        let alone = Arc::new(Pool::new(Settings::new(
            "alone",
            vec!["10.0.0.1:80".parse().unwrap()],
        )));
        for _ in 0..10 {
            assert!(!alone.lease(0).failed());
        }
        assert!(alone.is_available(0));
        let two = pool(Policy::RoundRobin, None);
        let ejected = (0..10).any(|_| two.lease(0).failed());
        assert!(ejected, "with two members, failures still eject");
    }

    #[test]
    fn tried_members_are_skipped_and_none_left_is_none() {
        let pool = pool(Policy::RoundRobin, None);
        let parts = parts(None);
        let subject = Subject {
            parts: &parts,
            client_ip: "192.0.2.1".parse().unwrap(),
        };
        let first = pool.choose(&subject, &[]).unwrap();
        let second = pool.choose(&subject, &[first]).unwrap();
        assert_ne!(first, second);
        assert_eq!(pool.choose(&subject, &[0, 1]), None);
    }

    #[test]
    fn leases_count_requests_in_flight_for_least_conn() {
        let pool = pool(Policy::LeastConn, None);
        let parts = parts(None);
        let subject = Subject {
            parts: &parts,
            client_ip: "192.0.2.1".parse().unwrap(),
        };
        let held = pool.lease(0);
        for _ in 0..5 {
            assert_eq!(pool.choose(&subject, &[]), Some(1));
        }
        assert_eq!(pool.members()[0].in_flight(), 1);
        drop(held);
        assert_eq!(pool.members()[0].in_flight(), 0);
    }

    #[test]
    fn p2c_prefers_the_lower_latency_average() {
        let pool = pool(Policy::P2c, None);
        pool.members()[0].add_latency_sample(Duration::from_millis(200));
        pool.members()[1].add_latency_sample(Duration::from_millis(2));
        let parts = parts(None);
        let subject = Subject {
            parts: &parts,
            client_ip: "192.0.2.1".parse().unwrap(),
        };
        for _ in 0..20 {
            assert_eq!(pool.choose(&subject, &[]), Some(1));
        }
        // Enough load on the fast one tips the balance.
        let leases: Vec<Lease> = (0..200).map(|_| pool.lease(1)).collect();
        assert_eq!(pool.choose(&subject, &[]), Some(0));
        drop(leases);
    }

    #[test]
    fn a_sticky_cookie_names_its_member_while_it_is_available() {
        let pool = pool(Policy::RoundRobin, Some("srv"));
        let none = parts(None);
        let subject = Subject {
            parts: &none,
            client_ip: "192.0.2.1".parse().unwrap(),
        };
        let cookie = pool.sticky_set_cookie(&subject, 1, true).unwrap();
        let text = cookie.to_str().unwrap();
        assert!(
            text.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
            "{text}"
        );
        let pair = text.split(';').next().unwrap();
        let with = parts(Some(&format!("a=b; {pair}")));
        let subject = Subject {
            parts: &with,
            client_ip: "192.0.2.1".parse().unwrap(),
        };
        for _ in 0..5 {
            assert_eq!(pool.choose(&subject, &[]), Some(1));
        }
        assert!(pool.sticky_set_cookie(&subject, 1, false).is_none());
        // Its member tried (or out): another one, and a new cookie for it.
        assert_eq!(pool.choose(&subject, &[1]), Some(0));
        assert!(pool.sticky_set_cookie(&subject, 0, false).is_some());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = http::HeaderMap::new();
        headers.append("cookie", "a=1; b=\"2\"".parse().unwrap());
        headers.append("cookie", "c=3".parse().unwrap());
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), Some("3"));
        assert_eq!(cookie(&headers, "d"), None);
    }
}
