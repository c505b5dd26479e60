//! The access log: one line per request, in the combined format (nginx/Apache, plus the
//! request time) or as JSON.
//!
//! Requests format their line on their own task and hand it to one writer thread over a
//! bounded channel, so a slow disk never blocks a request: when the channel is full the line is
//! dropped and counted. The writer buffers and flushes whenever the channel runs empty, so
//! lines appear promptly at low load and in large writes at high load.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Instant, SystemTime};

use http::Request;

use super::{AccessLog, LogFormat, LogTarget};

/// How a version is written in the log.
fn version_text(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 65_536;

/// The facts of one request, taken when it arrives and completed when its response ends.
pub struct Record {
    time: SystemTime,
    started: Instant,
    client: SocketAddr,
    method: String,
    target: String,
    version: &'static str,
    host: String,
    referer: String,
    user_agent: String,
    pub status: u16,
    pub bytes: u64,
    /// The connection's round-trip time and retransmissions when the response ended.
    pub tcp: Option<crate::net::tcp_info::TcpSample>,
}

impl Record {
    /// Takes what the log needs from a request as it arrives.
    pub fn begin<B>(req: &Request<B>, client: SocketAddr) -> Self {
        let header = |name: http::header::HeaderName| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().to_string(), |pq| pq.to_string());
        let host = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| header(http::header::HOST));
        Record {
            time: SystemTime::now(),
            started: Instant::now(),
            client,
            method: req.method().to_string(),
            target,
            version: version_text(req.version()),
            host,
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
            status: 0,
            bytes: 0,
            tcp: None,
        }
    }

    /// A record for a request read without hyper (the express lane): the fields as raw bytes
    /// of the head, absent ones empty.
    pub fn from_head(
        client: SocketAddr,
        method: &str,
        target: &[u8],
        version: http::Version,
        host: &[u8],
        referer: &[u8],
        user_agent: &[u8],
    ) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Record {
            time: SystemTime::now(),
            started: Instant::now(),
            client,
            method: method.to_string(),
            target: text(target),
            version: version_text(version),
            host: text(host),
            referer: text(referer),
            user_agent: text(user_agent),
            status: 0,
            bytes: 0,
            tcp: None,
        }
    }

    /// The combined format plus the request time in seconds and the connection's TCP figures:
    /// `client - - [time] "METHOD target VERSION" status bytes "referer" "agent" seconds
    /// rtt=MICROSECONDSus retrans=N` (`rtt=- retrans=-` when the kernel had none).
    pub fn combined(&self) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" {:.3}",
            self.client.ip(),
            clf_time(self.time),
            self.method,
            escape(&self.target),
            self.version,
            self.status,
            self.bytes,
            escape(if self.referer.is_empty() {
                "-"
            } else {
                &self.referer
            }),
            escape(if self.user_agent.is_empty() {
                "-"
            } else {
                &self.user_agent
            }),
            self.started.elapsed().as_secs_f64(),
        );
        match self.tcp {
            Some(tcp) => {
                let _ = write!(line, " rtt={}us retrans={}", tcp.rtt_us, tcp.retransmits);
            }
            None => line.push_str(" rtt=- retrans=-"),
        }
        line
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::json!({
            "time": httpdate::fmt_http_date(self.time),
            "client": self.client.ip().to_string(),
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "host": self.host,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": self.started.elapsed().as_secs_f64() * 1000.0,
            "referer": self.referer,
            "user_agent": self.user_agent,
            "tcp_rtt_us": self.tcp.map(|t| t.rtt_us),
            "tcp_retransmits": self.tcp.map(|t| t.retransmits),
        })
        .to_string()
    }
}

/// The sending side of the access log; cheap to share.
#[derive(Clone)]
pub struct Writer {
    format: LogFormat,
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// What the writer thread is asked to do.
enum Message {
    Line(String),
    /// Close the file and open its path again (after logrotate moved it; SIGUSR1).
    Reopen,
}

impl Writer {
    /// Opens the destination and starts the writer thread.
    pub fn start(settings: &AccessLog) -> io::Result<Self> {
        let target = settings.target.clone();
        let out = open(&target)?;
        let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(lines, out, target))?;
        Ok(Writer {
            format: settings.format,
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues the record's line; drops it (and counts it) when the writer is behind.
    pub fn write(&self, record: &Record) {
        let line = match self.format {
            LogFormat::Combined => record.combined(),
            LogFormat::Json => record.json(),
        };
        if let Err(TrySendError::Full(_)) = self.queue.try_send(Message::Line(line)) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(10_000) {
                tracing::warn!(
                    dropped,
                    "access log writer is behind; lines are being dropped"
                );
            }
        }
    }

    /// Asks the writer to reopen its file once the lines queued before are written.
    pub fn reopen(&self) {
        let _ = self.queue.send(Message::Reopen);
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn open(target: &LogTarget) -> io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        LogTarget::Stdout => Box::new(io::stdout()),
        LogTarget::Stderr => Box::new(io::stderr()),
        LogTarget::File(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
    })
}

fn write_lines(messages: Receiver<Message>, out: Box<dyn Write + Send>, target: LogTarget) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = messages.recv() {
        let mut ok = true;
        let mut reopen = false;
        for message in std::iter::once(first).chain(std::iter::from_fn(|| messages.try_recv().ok()))
        {
            match message {
                Message::Line(line) => ok &= writeln!(out, "{line}").is_ok(),
                Message::Reopen => {
                    reopen = true;
                    break;
                }
            }
        }
        if !ok || out.flush().is_err() {
            tracing::warn!("access log write failed");
        }
        if reopen {
            match open(&target) {
                Ok(file) => {
                    out = BufWriter::with_capacity(64 * 1024, file);
                    tracing::info!("access log reopened");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reopen the access log; still writing to the old file")
                }
            }
        }
    }
    let _ = out.flush();
}

/// `10/Oct/2000:13:55:36 +0000` (always UTC).
fn clf_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Escapes `"` and `\` and control bytes so a line cannot be forged by a request.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn combined_line_has_nginx_shape() {
        let req = Request::builder()
            .method("GET")
            .uri("/a?b=c")
            .header("user-agent", "curl \"8\"")
            .body(())
            .unwrap();
        let mut record = Record::begin(&req, "127.0.0.1:5000".parse().unwrap());
        record.time = SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136);
        record.status = 200;
        record.bytes = 512;
        let line = record.combined();
        assert!(
            line.starts_with(
                "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 512 \"-\" \"curl \\\"8\\\"\" "
            ),
            "{line}"
        );
    }

    #[test]
    fn json_line_has_the_fields() {
        let req = Request::builder()
            .method("HEAD")
            .uri("/x")
            .body(())
            .unwrap();
        let mut record = Record::begin(&req, "[::1]:5000".parse().unwrap());
        record.status = 404;
        let value: serde_json::Value = serde_json::from_str(&record.json()).unwrap();
        assert_eq!(value["method"], "HEAD");
        assert_eq!(value["target"], "/x");
        assert_eq!(value["status"], 404);
        assert_eq!(value["client"], "::1");
    }

    #[test]
    fn calendar_conversion() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
