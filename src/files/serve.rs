//! Static file responses: GET and HEAD for a path under a site's root, with validators,
//! conditional requests, byte ranges, precompressed siblings, on-the-fly compression, index
//! files, folder redirects and listings.
//!
//! Called by the edge's `produce` phase for routes with a `static` handler; the caller checks
//! the method list and strips the route prefix (`strip_prefix`). It never maps a URL to a file
//! itself: `path.rs` does, for the request path, index files and siblings alike.
//!
//! One request, in order:
//! 1. In one blocking task (`locate`): resolve the path; a folder without a trailing slash
//!    redirects (301, query kept); a folder tries the index files, then a listing, else 403; a
//!    file may be swapped for its `name.br` / `name.zst` / `name.gz` sibling when the client
//!    accepts that coding (RFC 9110 §12.5.3); the chosen file is opened and `fstat`ed.
//! 2. Validators from that `fstat`: a strong `ETag` `"<size hex>-<mtime ns hex>"` (a sibling adds
//!    `-br`/`-zstd`/`-gzip`; on-the-fly compression makes it weak, `W/`, as nginx does) and
//!    `Last-Modified`, no later than now (RFC 9110 §8.8.2.1).
//! 3. Preconditions (RFC 9110 §13.2.2): 412 or 304.
//! 4. On-the-fly compression for compressible types of at least 256 bytes without a sibling:
//!    no `Content-Length`, and `Range` is ignored (the encoded length is unknown).
//! 5. Otherwise `Range` (RFC 9110 §14), guarded by `If-Range`: one range is 206, none satisfiable
//!    is 416; several are answered with the whole file (200), see `http/range.rs`.
//! 6. The body: files up to 1 MiB are read whole into the open-file cache (`cache.rs`) and
//!    answered from memory, later requests without touching the disk; from 256 KiB the entry
//!    keeps the file open so the body can go out with `sendfile(2)` (`net/sendfile.rs`).
//!    Larger files stream in 256 KiB chunks with `Content-Length` set explicitly.
//!
//! HEAD gets the headers GET would get, `Content-Length` included, and no body. Every response
//! of a compressible type carries `Vary: Accept-Encoding`, compressed or not, so a shared cache
//! never hands a compressed copy to a client that did not ask for one.

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, request::Parts};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, BufReader};

use super::path::{self, Kind};
use super::{Error, Settings, cache, listing};
use crate::http::compress::{self, Coding};
use crate::http::conditional::{self, EntityTag, Outcome, Validators};
use crate::http::range::{self, ByteRange, Ranges};
use crate::http::reader::ReaderBody;
use crate::http::{Body, error_page};

/// Answers GET or HEAD for `path` (the raw request path, still percent-encoded, already
/// stripped of the route prefix when the settings say so) from the root in `settings`.
///
/// A `path` without a leading `/` (what prefix stripping may leave) is read as if it had one.
/// Never fails: errors become error pages (`files::Error::status`).
pub async fn serve(req: &Parts, path: &str, settings: &Settings) -> Response<Body> {
    let mut res = match respond(req, path, settings).await {
        Ok(res) => res,
        Err(err) => {
            tracing::debug!(error = %err, path, "static file not served");
            match err {
                Error::MethodNotAllowed => {
                    error_page::method_not_allowed(&[Method::GET, Method::HEAD])
                }
                err => error_page::response(err.status()),
            }
        }
    };
    if req.method == Method::HEAD {
        // Same headers as GET, Content-Length included (RFC 9110 §9.3.2), no content.
        *res.body_mut() = Body::Empty;
    }
    res
}

/// Answers from the open-file cache alone, without waiting on anything: `None` when the
/// request is not a GET or HEAD or the file is not cached (then [`serve`] answers it).
pub fn serve_from_memory(req: &Parts, path: &str, settings: &Settings) -> Option<Response<Body>> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return None;
    }
    let codings = accepted_codings(req, settings);
    let entry = settings.cache.lookup(&rooted(path), &codings)?;
    let mut res = from_memory(req, &entry);
    if req.method == Method::HEAD {
        *res.body_mut() = Body::Empty;
    }
    Some(res)
}

/// The cached entry that answers a GET with no preconditions and no range (the express lane,
/// `edge/express.rs`) when the answer is the entry's bytes as they are (not compressed on the
/// fly). `accept_encoding` holds the request's `Accept-Encoding` values. The same lookup as
/// [`serve_from_memory`], so both answer alike; an entry with a descriptor from
/// [`cache::SENDFILE_MIN_BYTES`] on goes out with `sendfile(2)` in both lanes.
pub fn plain_entry<'a>(
    path: &str,
    settings: &Settings,
    accept_encoding: impl Iterator<Item = &'a str>,
) -> Option<Arc<cache::Entry>> {
    let codings = if settings.precompressed || settings.compress {
        compress::negotiate_values(accept_encoding, &Coding::ALL)
    } else {
        Vec::new()
    };
    let entry = settings.cache.lookup(&rooted(path), &codings)?;
    let whole = entry.content.len() as u64 == entry.rep.length;
    (entry.rep.on_the_fly().is_none() && whole).then_some(entry)
}

/// The codings the client accepts, best first, when the settings can use any.
fn accepted_codings(req: &Parts, settings: &Settings) -> Vec<Coding> {
    if settings.precompressed || settings.compress {
        compress::negotiate(&req.headers, &Coding::ALL)
    } else {
        Vec::new()
    }
}

/// The path with its leading `/` (what prefix stripping may have left out).
fn rooted(path: &str) -> std::borrow::Cow<'_, str> {
    if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}").into()
    }
}

/// A file chosen and opened by [`locate`], with what decides its headers.
struct Selected {
    file: File,
    /// From `fstat` on the open file, so the validators describe the bytes sent.
    meta: Metadata,
    /// Where it was opened (canonical unless symlinks outside are followed): the open-file
    /// cache checks this path again.
    path: PathBuf,
    /// The `Content-Type` of the name asked for (not of the sibling).
    content_type: String,
    /// The coding of a precompressed sibling, when one was chosen.
    coding: Option<Coding>,
}

/// What the path names, once located on disk. Built once per request that misses the cache
/// and moved once; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Located {
    /// A folder asked without its trailing slash.
    Redirect,
    /// A folder without an index file, listing allowed.
    Listing {
        entries: Vec<listing::Entry>,
        at_root: bool,
    },
    /// A file to send.
    File(Selected),
}

async fn respond(req: &Parts, path: &str, settings: &Settings) -> Result<Response<Body>, Error> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let codings = accepted_codings(req, settings);
    let raw_path = rooted(path);
    if let Some(entry) = settings.cache.lookup(&raw_path, &codings) {
        return Ok(from_memory(req, &entry));
    }
    let located = {
        // `spawn_blocking` needs owned data; the settings are a path, a few names and flags.
        let (settings, codings, raw_path) =
            (settings.clone(), codings.clone(), raw_path.to_string());
        blocking(move || locate(&settings, &raw_path, &codings)).await?
    };
    match located {
        Located::Redirect => folder_redirect(req),
        Located::Listing { entries, at_root } => Ok(listing_response(req, entries, at_root)),
        Located::File(selected) => {
            file_response(req, settings, selected, &codings, &raw_path).await
        }
    }
}

/// Step 1 of the module doc: everything that touches the file system before the headers are
/// known, in one blocking task.
fn locate(settings: &Settings, raw_path: &str, codings: &[Coding]) -> Result<Located, Error> {
    let follow = settings.follow_symlinks_outside;
    let resolved = path::resolve(&settings.root, raw_path, follow)?;
    if resolved.kind == Kind::File {
        let name = resolved.normalized.file_name().unwrap_or_default();
        return select(settings, &resolved.path, &resolved.lexical, name, codings);
    }
    if !resolved.normalized.has_trailing_slash() {
        return Ok(Located::Redirect);
    }
    for index in &settings.index {
        // Index names come from the config; still, only a plain name may be joined.
        if Path::new(index).file_name() != Some(OsStr::new(index)) {
            continue;
        }
        let lexical = resolved.lexical.join(index);
        match path::confine(&settings.root, &lexical, follow) {
            Ok((real, Kind::File)) => return select(settings, &real, &lexical, index, codings),
            Ok((_, Kind::Folder)) | Err(Error::NotFound) => continue,
            Err(err) => return Err(err),
        }
    }
    if settings.listing {
        let entries = listing::read(&settings.root, &resolved.path, follow)?;
        let at_root = resolved.normalized.relative().is_empty();
        return Ok(Located::Listing { entries, at_root });
    }
    Err(Error::NoIndex)
}

/// Opens the file to send: a precompressed sibling of `lexical` in the client's order of
/// preference when one exists inside the root, else `real` itself.
fn select(
    settings: &Settings,
    real: &Path,
    lexical: &Path,
    name: &str,
    codings: &[Coding],
) -> Result<Located, Error> {
    let content_type = content_type(name);
    if settings.precompressed {
        for &coding in codings {
            let mut sibling = lexical.as_os_str().to_owned();
            sibling.push(".");
            sibling.push(coding.extension());
            let follow = settings.follow_symlinks_outside;
            // Any problem with a sibling (missing, outside, unreadable) falls back to the file.
            if let Ok((path, Kind::File)) =
                path::confine(&settings.root, Path::new(&sibling), follow)
                && let Ok((file, meta)) = open(&path, follow)
            {
                return Ok(Located::File(Selected {
                    file,
                    meta,
                    path,
                    content_type,
                    coding: Some(coding),
                }));
            }
        }
    }
    let (file, meta) = open(real, settings.follow_symlinks_outside)?;
    Ok(Located::File(Selected {
        file,
        meta,
        path: real.to_path_buf(),
        content_type,
        coding: None,
    }))
}

/// Opens a regular file for reading. `O_NONBLOCK` keeps a FIFO swapped in after the check from
/// hanging the open; without `follow_symlinks_outside` the path is canonical, so `O_NOFOLLOW`
/// refuses a last component swapped for a symlink after the check (ELOOP, 403).
fn open(path: &Path, follow_symlinks_outside: bool) -> Result<(File, Metadata), Error> {
    let mut flags = libc::O_NONBLOCK;
    if !follow_symlinks_outside {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::SpecialFile);
    }
    Ok((file, meta))
}

/// Steps 2 to 6 of the module doc, for a file opened by `locate`. A file small enough for the
/// open-file cache is read whole, kept there, and answered from memory.
async fn file_response(
    req: &Parts,
    settings: &Settings,
    selected: Selected,
    codings: &[Coding],
    raw_path: &str,
) -> Result<Response<Body>, Error> {
    let Selected {
        file,
        meta,
        path,
        content_type,
        coding: sibling,
    } = selected;
    let rep = describe(&meta, &content_type, sibling, codings, settings);
    if rep.on_the_fly.is_none() && settings.cache.admits(rep.length) {
        let length = rep.length;
        let file = Arc::new(file);
        let content = read_whole(file.clone(), 0, length).await?;
        // Large files keep their descriptor so the body can go out with `sendfile(2)`.
        let handle = (length >= cache::SENDFILE_MIN_BYTES).then_some(file);
        let entry = cache::Entry::new(rep, content, handle, &path, &meta);
        let entry = settings.cache.insert(raw_path, codings, entry);
        return Ok(from_memory(req, &entry));
    }
    let plan = match plan(req, &rep) {
        Ok(plan) => plan,
        Err(res) => return Ok(res),
    };
    let body = match plan {
        Plan::Compress { coding, .. } if req.method != Method::HEAD => {
            let reader = BufReader::with_capacity(CHUNK_BYTES, tokio::fs::File::from_std(file));
            compress::encode(reader, coding)
        }
        Plan::Send { start, count, .. } if req.method != Method::HEAD => {
            if count <= WHOLE_READ_MAX_BYTES {
                Body::full(read_whole(Arc::new(file), start, count).await?)
            } else if req.extensions.get::<crate::http::ZeroCopy>().is_some() {
                // HTTP/1 on plain TCP: zero-copy. The connection's socket sends the file
                // itself (`net/sendfile.rs`); nothing of it is read into memory here.
                Body::Region {
                    file: Arc::new(file),
                    offset: start,
                    remaining: count,
                }
            } else {
                // HTTP/2 and TLS need the bytes: they are read.
                stream(file, start, count).await?
            }
        }
        Plan::Multipart {
            ref parts, ref end, ..
        } if req.method != Method::HEAD => {
            // At most MAX_PARTS ranges of a file beyond the cache: read them.
            let file = Arc::new(file);
            let mut read = Vec::with_capacity(parts.len());
            for (_, range) in parts.iter() {
                read.push(read_whole(file.clone(), range.start, range.len()).await?);
            }
            let mut read = read.into_iter();
            multipart_body(parts, end, |_| read.next().unwrap_or_default())
        }
        _ => Body::Empty,
    };
    let (status, headers) = plan.into_head();
    Ok(with_headers(status, headers, body))
}

/// Answers from a representation held in memory (the open-file cache): preconditions and
/// ranges as for a file, the body a slice of the stored bytes (no copy).
pub(super) fn from_memory(req: &Parts, entry: &cache::Entry) -> Response<Body> {
    let plan = match plan(req, &entry.rep) {
        Ok(plan) => plan,
        Err(res) => return res,
    };
    let body = match &plan {
        Plan::Send { start, count, .. } if req.method != Method::HEAD => {
            let content = &entry.content;
            let (start, end) = (*start as usize, (*start + *count) as usize);
            let bytes = content.slice(start.min(content.len())..end.min(content.len()));
            match &entry.file {
                Some(file) if bytes.len() as u64 >= cache::SENDFILE_MIN_BYTES => {
                    Body::file(bytes, file.clone(), start as u64)
                }
                _ => Body::full(bytes),
            }
        }
        Plan::Multipart { parts, end, .. } if req.method != Method::HEAD => {
            let content = &entry.content;
            multipart_body(parts, end, |r| {
                content.slice(
                    (r.start as usize).min(content.len())
                        ..((r.end + 1) as usize).min(content.len()),
                )
            })
        }
        _ => Body::Empty,
    };
    let (status, headers) = plan.into_head();
    with_headers(status, headers, body)
}

/// What a file's response says about it, worked out once from its `fstat`: the headers of a
/// full 200 response (without `Content-Length`), its validators, its length, and whether it is
/// compressed on the fly.
#[derive(Debug, Clone)]
pub struct Representation {
    headers: HeaderMap,
    /// `headers` plus `Accept-Ranges` and `Content-Length`: the whole head of a plain 200,
    /// built once so the common answer is one clone (no insert that grows the map).
    plain: HeaderMap,
    validators: Validators,
    pub length: u64,
    on_the_fly: Option<Coding>,
}

impl Representation {
    /// The fields of a full 200 response.
    pub fn plain_headers(&self) -> &HeaderMap {
        &self.plain
    }

    /// The coding applied on the fly, when the response is compressed as it is sent.
    pub fn on_the_fly(&self) -> Option<Coding> {
        self.on_the_fly
    }
}

/// Step 2: validators and headers.
fn describe(
    meta: &Metadata,
    content_type: &str,
    sibling: Option<Coding>,
    codings: &[Coding],
    settings: &Settings,
) -> Representation {
    let length = meta.len();
    let compressible = compress::is_compressible(content_type);
    let on_the_fly = match codings.first() {
        Some(&coding)
            if settings.compress
                && sibling.is_none()
                && compressible
                && length >= MIN_COMPRESS_BYTES =>
        {
            Some(coding)
        }
        _ => None,
    };
    let modified = meta.modified().ok();
    let validators = Validators {
        etag: Some(entity_tag(length, modified, sibling, on_the_fly.is_some())),
        // RFC 9110 §8.8.2.1: a modification time in the future is replaced by now.
        last_modified: modified.map(|m| m.min(SystemTime::now())),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = validators
        .etag
        .as_ref()
        .and_then(EntityTag::to_header_value)
    {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = validators.last_modified.and_then(conditional::http_date) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    if compressible || sibling.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Some(coding) = sibling.or(on_the_fly) {
        headers.insert(header::CONTENT_ENCODING, coding.header_value());
    }
    let mut plain = headers.clone();
    // The edge adds `Server` to every response; present here, it needs no insert (which
    // would grow the clone made per request).
    plain.insert(header::SERVER, crate::http::SERVER_NAME);
    if on_the_fly.is_none() {
        plain.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        plain.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Representation {
        headers,
        plain,
        validators,
        length,
        on_the_fly,
    }
}

/// What to send for a representation, once the request's preconditions and range are read.
enum Plan {
    /// The whole file compressed on the fly (no `Content-Length`, `Range` ignored).
    Compress { headers: HeaderMap, coding: Coding },
    /// `count` bytes from `start`: the whole file (200) or one range (206).
    Send {
        status: StatusCode,
        headers: HeaderMap,
        start: u64,
        count: u64,
    },
    /// Several ranges (206, `multipart/byteranges`): each part's head, then its bytes.
    Multipart {
        headers: HeaderMap,
        parts: Vec<(Bytes, ByteRange)>,
        /// The closing delimiter.
        end: Bytes,
    },
}

impl Plan {
    fn into_head(self) -> (StatusCode, HeaderMap) {
        match self {
            Plan::Compress { headers, .. } => (StatusCode::OK, headers),
            Plan::Send {
                status, headers, ..
            } => (status, headers),
            Plan::Multipart { headers, .. } => (StatusCode::PARTIAL_CONTENT, headers),
        }
    }
}

/// At most this many ranges get a `multipart/byteranges` answer; more, or overlapping ones,
/// get the whole representation (RFC 9110 §14.2 lets a server ignore `Range`, and warns about
/// many small or overlapping ranges).
const MAX_PARTS: usize = 16;

/// At most this many bytes of ranges in one multipart answer (they may be read into memory
/// for files beyond the cache); more get the whole representation, streamed.
const MAX_PART_BYTES: u64 = 16 * 1024 * 1024;

/// The plan for several satisfiable ranges, or `None` to send the whole representation.
fn multipart(ranges: &[ByteRange], length: u64, mut headers: HeaderMap) -> Option<Plan> {
    if ranges.len() > MAX_PARTS {
        return None;
    }
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    if sorted.windows(2).any(|w| w[1].start <= w[0].end)
        || ranges.iter().map(ByteRange::len).sum::<u64>() > MAX_PART_BYTES
    {
        return None;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let boundary = boundary();
    let mut parts = Vec::with_capacity(ranges.len());
    let mut total = 0u64;
    for range in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{length}\r\n\r\n",
            range.start, range.end
        );
        total += head.len() as u64 + range.len();
        parts.push((Bytes::from(head), *range));
    }
    let end = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    total += end.len() as u64;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")).ok()?,
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    Some(Plan::Multipart {
        headers,
        parts,
        end,
    })
}

/// A delimiter that does not occur in the parts' heads and is very unlikely in their bytes
/// (64 bits from the clock and a counter).
fn boundary() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "portico-{:016x}",
        nanos.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

/// A multipart body: each part's head and bytes (`bytes_of` gives a range's bytes), then the
/// closing delimiter.
fn multipart_body(
    parts: &[(Bytes, ByteRange)],
    end: &Bytes,
    mut bytes_of: impl FnMut(&ByteRange) -> Bytes,
) -> Body {
    let mut frames = Vec::with_capacity(parts.len() * 2 + 1);
    for (head, range) in parts {
        frames.push(head.clone());
        frames.push(bytes_of(range));
    }
    frames.push(end.clone());
    let stream = futures_util::stream::iter(
        frames
            .into_iter()
            .map(|b| Ok::<_, io::Error>(http_body::Frame::data(b))),
    );
    Body::stream(http_body_util::StreamBody::new(stream))
}

/// Steps 3 to 5: preconditions (304, 412), compression, `Range` (206, 416). An early answer
/// comes back as `Err`.
#[allow(clippy::result_large_err)] // the early answer is moved once; boxing costs more
fn plan(req: &Parts, rep: &Representation) -> Result<Plan, Response<Body>> {
    // Most requests carry no precondition and no range: skip reading them field by field.
    // One pass over the request's (few) fields beats six hash lookups.
    let plain = !req.headers.keys().any(|name| PLAN_FIELDS.contains(name));
    if plain && rep.on_the_fly.is_none() {
        return Ok(Plan::Send {
            status: StatusCode::OK,
            headers: rep.plain.clone(),
            start: 0,
            count: rep.length,
        });
    }
    let mut headers = rep.headers.clone();
    match conditional::evaluate(&req.method, &req.headers, &rep.validators) {
        Outcome::Proceed => {}
        Outcome::NotModified => return Err(not_modified(&headers)),
        Outcome::PreconditionFailed => {
            return Err(error_page::response(StatusCode::PRECONDITION_FAILED));
        }
    }
    if let Some(coding) = rep.on_the_fly {
        return Ok(Plan::Compress { headers, coding });
    }
    let length = rep.length;
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let ranges = if conditional::if_range_allows(&req.headers, &rep.validators) {
        range::from_headers(&req.method, &req.headers, length)
    } else {
        Ranges::Ignore
    };
    if let Ranges::Multiple(list) = &ranges
        && let Some(plan) = multipart(list, length, headers.clone())
    {
        return Ok(plan);
    }
    let (status, start, count) = match ranges {
        Ranges::Ignore | Ranges::Multiple(_) => (StatusCode::OK, 0, length),
        Ranges::Single(range) => {
            headers.insert(header::CONTENT_RANGE, range.content_range(length));
            (StatusCode::PARTIAL_CONTENT, range.start, range.len())
        }
        Ranges::Unsatisfiable => {
            let res = error_page::response(StatusCode::RANGE_NOT_SATISFIABLE);
            let value = range::unsatisfied_content_range(length);
            return Err(error_page::with_header(res, header::CONTENT_RANGE, value));
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    Ok(Plan::Send {
        status,
        headers,
        start,
        count,
    })
}

/// Reads `count` bytes at `start` of an open file in one buffer, on the blocking pool.
async fn read_whole(file: Arc<File>, start: u64, count: u64) -> Result<Bytes, Error> {
    let len = usize::try_from(count).map_err(|_| Error::Io(io::Error::other("range too large")))?;
    blocking(move || {
        let mut buf = vec![0; len];
        // A file truncated since `fstat` fails here (UnexpectedEof, 500) rather than sending
        // fewer bytes than Content-Length promised.
        file.read_exact_at(&mut buf, start)?;
        Ok(Bytes::from(buf))
    })
    .await
}

/// A body streaming `count` bytes from `start`, 256 KiB at a time.
async fn stream(file: File, start: u64, count: u64) -> Result<Body, Error> {
    let mut file = tokio::fs::File::from_std(file);
    file.set_max_buf_size(CHUNK_BYTES);
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await?;
    }
    Ok(Body::stream(ReaderBody::with_length(
        file.take(count),
        CHUNK_BYTES,
        count,
    )))
}

/// 301 to the same path with a trailing slash, query kept. Leading slashes are collapsed to
/// one so that `//evil.example` (a folder of that name under the root) cannot redirect to
/// another host through a scheme-relative `Location`.
fn folder_redirect(req: &Parts) -> Result<Response<Body>, Error> {
    let path = req.uri.path().trim_start_matches('/');
    let mut location = format!("/{}/", utf8_percent_encode(path, LOCATION));
    if let Some(query) = req.uri.query() {
        location.push('?');
        location.extend(utf8_percent_encode(query, LOCATION));
    }
    let value = HeaderValue::from_str(&location).map_err(|_| Error::NotFound)?;
    Ok(error_page::redirect(StatusCode::MOVED_PERMANENTLY, value))
}

fn listing_response(req: &Parts, entries: Vec<listing::Entry>, at_root: bool) -> Response<Body> {
    let title = percent_decode_str(req.uri.path()).decode_utf8_lossy();
    let html = listing::render(&title, at_root, entries);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
    with_headers(StatusCode::OK, headers, Body::full(html))
}

/// 304 with the headers RFC 9110 §15.4.5 asks for, and no content.
fn not_modified(headers: &HeaderMap) -> Response<Body> {
    with_headers(
        StatusCode::NOT_MODIFIED,
        conditional::not_modified_headers(headers),
        Body::Empty,
    )
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// `"<size hex>-<mtime ns hex>"`, then `-<coding>` for a sibling; weak when compressed on the
/// fly, since the encoded bytes may differ from one response to the next.
fn entity_tag(
    length: u64,
    modified: Option<SystemTime>,
    sibling: Option<Coding>,
    weak: bool,
) -> EntityTag {
    let nanos = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut opaque = format!("{length:x}-{nanos:x}");
    if let Some(coding) = sibling {
        opaque.push('-');
        opaque.push_str(coding.token());
    }
    if weak {
        EntityTag::weak(opaque)
    } else {
        EntityTag::strong(opaque)
    }
}

/// The media type for a file name (`mime_guess`), `application/octet-stream` when unknown;
/// text types are declared UTF-8.
fn content_type(name: &str) -> String {
    let essence = mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream");
    if essence.starts_with("text/") || essence == "application/javascript" {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// Runs blocking file system work off the async threads. A panic in it becomes a 500.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Io(io::Error::other(err)))?
}

/// The request fields that can change what [`plan`] decides.
const PLAN_FIELDS: [header::HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];
/// Bodies up to this size are read whole into one buffer.
const WHOLE_READ_MAX_BYTES: u64 = 64 * 1024;
/// Larger bodies stream in reads of this size.
const CHUNK_BYTES: usize = 256 * 1024;
/// Smaller files are not worth compressing on the fly (headers and framing cost more).
const MIN_COMPRESS_BYTES: u64 = 256;
/// What a `Location` built from the request target must still escape (it is already encoded).
const LOCATION: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>').add(b'\\');
const HTML: &str = "text/html; charset=utf-8";

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use http::Request;
    use http_body_util::BodyExt;

    use super::*;
    use crate::files::cache;

    /// A root with a few files; its `Settings` default to the documented defaults.
    struct Site {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
        settings: Settings,
    }

    fn site() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
        std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").unwrap();
        std::fs::write(root.join("app.js"), "console.log('portico');\n".repeat(40)).unwrap();
        std::fs::write(root.join("pixel.png"), [0x89, b'P', b'N', b'G']).unwrap();
        std::fs::write(root.join("blob"), vec![1u8; 1000]).unwrap();
        std::fs::write(root.join("zero.txt"), "").unwrap();
        let settings = Settings::new(root.clone());
        Site {
            _dir: dir,
            root,
            outside,
            settings,
        }
    }

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    /// Status, headers and body of one request (`uri` may carry a query).
    async fn call(site: &Site, method: Method, uri: &str, headers: &[(&str, &str)]) -> Got {
        let req = parts(method, uri, headers);
        let path = req.uri.path().to_string();
        let res = serve(&req, &path, &site.settings).await;
        let (head, body) = res.into_parts();
        let body = sent_bytes(body).await;
        Got {
            status: head.status,
            headers: head.headers,
            body,
        }
    }

    async fn get(site: &Site, uri: &str, headers: &[(&str, &str)]) -> Got {
        call(site, Method::GET, uri, headers).await
    }

    /// The bytes a client receives: a file region is what the socket sends from the file.
    async fn sent_bytes(body: Body) -> Bytes {
        match body {
            Body::Region {
                file,
                offset,
                remaining,
            } => {
                let mut buf = vec![0; remaining as usize];
                file.read_exact_at(&mut buf, offset).unwrap();
                Bytes::from(buf)
            }
            body => body.collect().await.unwrap().to_bytes(),
        }
    }

    /// A response as a test sees it; printed whole when an assertion fails.
    #[derive(Debug)]
    struct Got {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Got {
        fn header(&self, name: &str) -> &str {
            self.headers
                .get(name)
                .map(|v| v.to_str().unwrap())
                .unwrap_or_else(|| panic!("no {name} in {self:#?}"))
        }

        fn has(&self, name: &str) -> bool {
            self.headers.contains_key(name)
        }
    }

    #[tokio::test]
    async fn small_file_has_type_length_and_validators() {
        let site = site();
        let got = get(&site, "/hello.txt", &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_eq!(&got.body[..], b"hello world\n");
        assert_eq!(got.header("content-type"), "text/plain; charset=utf-8");
        assert_eq!(got.header("content-length"), "12");
        assert_eq!(got.header("accept-ranges"), "bytes");
        assert_eq!(got.header("vary"), "accept-encoding");
        let etag = got.header("etag");
        assert!(etag.starts_with("\"c-") && etag.ends_with('"'), "{got:#?}");
        httpdate::parse_http_date(got.header("last-modified")).unwrap();
    }

    #[tokio::test]
    async fn head_has_the_same_headers_and_no_body() {
        let site = site();
        let get = get(&site, "/hello.txt", &[]).await;
        let head = call(&site, Method::HEAD, "/hello.txt", &[]).await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty(), "{head:#?}");
        assert_eq!(head.headers, get.headers);
    }

    #[tokio::test]
    async fn head_of_error_keeps_length_without_body() {
        let site = site();
        let got = call(&site, Method::HEAD, "/nope", &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND);
        assert!(got.body.is_empty());
        assert_ne!(got.header("content-length"), "0");
    }

    #[tokio::test]
    async fn unknown_type_is_octet_stream_without_vary() {
        let site = site();
        let got = get(&site, "/blob", &[("accept-encoding", "gzip")]).await;
        assert_eq!(got.header("content-type"), "application/octet-stream");
        assert!(!got.has("vary") && !got.has("content-encoding"), "{got:#?}");
    }

    #[tokio::test]
    async fn empty_file_is_200_with_zero_length() {
        let site = site();
        let got = get(&site, "/zero.txt", &[("range", "bytes=0-")]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_eq!(got.header("content-length"), "0");
        assert!(got.body.is_empty());
    }

    #[tokio::test]
    async fn missing_file_is_404_page() {
        let site = site();
        let got = get(&site, "/nope.txt", &[]).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND);
        assert!(
            String::from_utf8_lossy(&got.body).contains("404 Not Found"),
            "{got:#?}"
        );
        assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    }

    #[tokio::test]
    async fn traversal_is_400_and_never_reads_outside() {
        let site = site();
        std::fs::write(site.outside.join("secret"), "secret").unwrap();
        for uri in [
            "/../outside/secret",
            "/%2e%2e/outside/secret",
            "/docs/..%2f..%2foutside/secret",
        ] {
            let got = get(&site, uri, &[]).await;
            assert_eq!(got.status, StatusCode::BAD_REQUEST, "{uri}: {got:#?}");
            assert!(!String::from_utf8_lossy(&got.body).contains("secret"));
        }
    }

    #[tokio::test]
    async fn symlink_outside_is_403_unless_allowed() {
        let mut site = site();
        std::fs::write(site.outside.join("secret"), "secret").unwrap();
        symlink(site.outside.join("secret"), site.root.join("leak")).unwrap();
        assert_eq!(get(&site, "/leak", &[]).await.status, StatusCode::FORBIDDEN);
        site.settings.follow_symlinks_outside = true;
        let got = get(&site, "/leak", &[]).await;
        assert_eq!(
            (got.status, &got.body[..]),
            (StatusCode::OK, &b"secret"[..])
        );
    }

    #[tokio::test]
    async fn other_methods_are_405_with_allow() {
        let site = site();
        let got = call(&site, Method::POST, "/hello.txt", &[]).await;
        assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(got.header("allow"), "GET, HEAD");
    }

    #[tokio::test]
    async fn stripped_path_without_leading_slash_is_served() {
        let site = site();
        let req = parts(Method::GET, "/static/hello.txt", &[]);
        let res = serve(&req, "hello.txt", &site.settings).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn folder_without_slash_redirects_keeping_the_query() {
        let site = site();
        let got = get(&site, "/docs?x=1&y=%20", &[]).await;
        assert_eq!(got.status, StatusCode::MOVED_PERMANENTLY, "{got:#?}");
        assert_eq!(got.header("location"), "/docs/?x=1&y=%20");
    }

    #[tokio::test]
    async fn folder_redirect_cannot_leave_the_host() {
        let site = site();
        std::fs::create_dir_all(site.root.join("evil.example")).unwrap();
        let got = get(&site, "//evil.example", &[]).await;
        assert_eq!(got.status, StatusCode::MOVED_PERMANENTLY, "{got:#?}");
        assert_eq!(got.header("location"), "/evil.example/");
    }

    #[tokio::test]
    async fn folder_serves_its_index() {
        let site = site();
        let got = get(&site, "/docs/", &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_eq!(&got.body[..], b"<h1>docs</h1>");
        assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    }

    #[tokio::test]
    async fn index_files_are_tried_in_order() {
        let mut site = site();
        std::fs::write(site.root.join("docs/index.htm"), "htm").unwrap();
        site.settings.index = vec![
            "missing.html".into(),
            "../hello.txt".into(),
            "index.htm".into(),
        ];
        let got = get(&site, "/docs/", &[]).await;
        assert_eq!(&got.body[..], b"htm", "{got:#?}");
    }

    #[tokio::test]
    async fn index_symlinked_outside_is_403() {
        let site = site();
        std::fs::write(site.outside.join("index.html"), "secret").unwrap();
        symlink(
            site.outside.join("index.html"),
            site.root.join("empty/index.html"),
        )
        .unwrap();
        assert_eq!(
            get(&site, "/empty/", &[]).await.status,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn folder_without_index_is_403_when_listing_is_off() {
        let site = site();
        assert_eq!(
            get(&site, "/empty/", &[]).await.status,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn folder_without_index_is_listed_when_allowed() {
        let mut site = site();
        site.settings.listing = true;
        site.settings.index.clear();
        let got = get(&site, "/", &[]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
        let html = String::from_utf8(got.body.to_vec()).unwrap();
        assert!(html.contains("href=\"./docs/\"") && html.contains("href=\"./hello.txt\""));
        assert!(!html.contains("href=\"../\""), "{html}");
        assert_eq!(got.header("content-length"), html.len().to_string());
    }

    #[tokio::test]
    async fn file_with_trailing_slash_is_404() {
        let site = site();
        assert_eq!(
            get(&site, "/hello.txt/", &[]).await.status,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn if_none_match_gives_304_with_validators_and_no_body() {
        let site = site();
        let first = get(&site, "/hello.txt", &[]).await;
        let etag = first.header("etag");
        let got = get(&site, "/hello.txt", &[("if-none-match", etag)]).await;
        assert_eq!(got.status, StatusCode::NOT_MODIFIED, "{got:#?}");
        assert!(got.body.is_empty());
        assert_eq!(got.header("etag"), etag);
        assert_eq!(got.header("vary"), "accept-encoding");
        assert!(got.has("last-modified"));
        assert!(
            !got.has("content-length") && !got.has("content-type"),
            "{got:#?}"
        );
    }

    #[tokio::test]
    async fn if_modified_since_gives_304() {
        let site = site();
        let first = get(&site, "/hello.txt", &[]).await;
        let got = get(
            &site,
            "/hello.txt",
            &[("if-modified-since", first.header("last-modified"))],
        )
        .await;
        assert_eq!(got.status, StatusCode::NOT_MODIFIED, "{got:#?}");
    }

    #[tokio::test]
    async fn if_modified_since_is_ignored_when_if_none_match_is_present() {
        let site = site();
        let first = get(&site, "/hello.txt", &[]).await;
        let lm = first.header("last-modified");
        let got = get(
            &site,
            "/hello.txt",
            &[("if-none-match", "\"x\""), ("if-modified-since", lm)],
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
    }

    #[tokio::test]
    async fn if_match_mismatch_is_412() {
        let site = site();
        let got = get(&site, "/hello.txt", &[("if-match", "\"nope\"")]).await;
        assert_eq!(got.status, StatusCode::PRECONDITION_FAILED, "{got:#?}");
        let first = get(&site, "/hello.txt", &[]).await;
        let got = get(&site, "/hello.txt", &[("if-match", first.header("etag"))]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
    }

    #[tokio::test]
    async fn if_unmodified_since_in_the_past_is_412() {
        let site = site();
        let got = get(
            &site,
            "/hello.txt",
            &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
        )
        .await;
        assert_eq!(got.status, StatusCode::PRECONDITION_FAILED, "{got:#?}");
    }

    #[tokio::test]
    async fn future_mtime_is_reported_as_now() {
        let site = site();
        let file = File::options()
            .write(true)
            .open(site.root.join("hello.txt"))
            .unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(86_400 * 365))
            .unwrap();
        let got = get(&site, "/hello.txt", &[]).await;
        let lm = httpdate::parse_http_date(got.header("last-modified")).unwrap();
        assert!(lm <= SystemTime::now(), "{got:#?}");
    }

    #[tokio::test]
    async fn single_range_is_206_with_content_range() {
        let site = site();
        let got = get(&site, "/hello.txt", &[("range", "bytes=0-4")]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{got:#?}");
        assert_eq!(&got.body[..], b"hello");
        assert_eq!(got.header("content-range"), "bytes 0-4/12");
        assert_eq!(got.header("content-length"), "5");
    }

    #[tokio::test]
    async fn suffix_range_gives_the_tail() {
        let site = site();
        let got = get(&site, "/hello.txt", &[("range", "bytes=-6")]).await;
        assert_eq!(&got.body[..], b"world\n", "{got:#?}");
        assert_eq!(got.header("content-range"), "bytes 6-11/12");
    }

    #[tokio::test]
    async fn range_past_end_gives_416() {
        let site = site();
        let got = get(&site, "/hello.txt", &[("range", "bytes=12-")]).await;
        assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE, "{got:#?}");
        assert_eq!(got.header("content-range"), "bytes */12");
    }

    /// The parts of a `multipart/byteranges` body: (Content-Range, bytes).
    fn parts_of(got: &Got) -> Vec<(String, Vec<u8>)> {
        let ctype = got.header("content-type");
        let boundary = ctype
            .split_once("boundary=")
            .map(|(_, b)| b.to_string())
            .unwrap_or_else(|| panic!("no boundary in {ctype}"));
        let find = |hay: &[u8], needle: &[u8], from: usize| {
            hay[from..]
                .windows(needle.len())
                .position(|w| w == needle)
                .map(|at| at + from)
        };
        let body = &got.body[..];
        let delimiter = format!("\r\n--{boundary}");
        let closing = format!("\r\n--{boundary}--\r\n");
        assert!(body.ends_with(closing.as_bytes()), "no closing delimiter");
        let mut parts = Vec::new();
        let mut at = 0;
        while let Some(start) = find(body, delimiter.as_bytes(), at) {
            let after = start + delimiter.len();
            if body[after..].starts_with(b"--") {
                break;
            }
            let head_end = find(body, b"\r\n\r\n", after).unwrap();
            let head = String::from_utf8_lossy(&body[after..head_end]).to_string();
            let next = find(body, delimiter.as_bytes(), head_end + 4).unwrap();
            let range = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Range: "))
                .unwrap()
                .to_string();
            parts.push((range, body[head_end + 4..next].to_vec()));
            at = next;
        }
        parts
    }

    #[tokio::test]
    async fn several_ranges_get_multipart_byteranges_in_the_order_asked() {
        let site = site();
        for _ in 0..2 {
            // From disk the first time, from the open-file cache after.
            let got = get(&site, "/hello.txt", &[("range", "bytes=6-10,0-4")]).await;
            assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{got:#?}");
            assert!(
                got.header("content-type")
                    .starts_with("multipart/byteranges; boundary=")
            );
            assert_eq!(got.header("content-length"), got.body.len().to_string());
            let parts = parts_of(&got);
            assert_eq!(
                parts,
                vec![
                    ("bytes 6-10/12".to_string(), b"world".to_vec()),
                    ("bytes 0-4/12".to_string(), b"hello".to_vec()),
                ]
            );
        }
    }

    #[tokio::test]
    async fn several_ranges_of_a_file_beyond_the_cache_are_read_into_parts() {
        let site = site();
        let data = big_file(&site);
        let got = get(&site, "/big.bin", &[("range", "bytes=0-9,1400000-1400009")]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
        let parts = parts_of(&got);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].0, "bytes 1400000-1400009/1500000");
        assert!(parts[1].1 == data[1_400_000..1_400_010]);
    }

    #[tokio::test]
    async fn invalid_overlapping_and_too_many_ranges_give_the_whole_file() {
        let site = site();
        // 17 ranges of a 12-byte file, most of them distinct single bytes: over the limit.
        std::fs::write(site.root.join("abc.txt"), "abcdefghijklmnopqrstuvwxyz").unwrap();
        let many = format!(
            "bytes={}",
            (0..17)
                .map(|i| format!("{i}-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let got = get(&site, "/abc.txt", &[("range", &many)]).await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        for value in ["bytes=5-2", "bytes=0-4,3-6", "pages=1-2"] {
            let got = get(&site, "/hello.txt", &[("range", value)]).await;
            assert_eq!(got.status, StatusCode::OK, "{value}: {got:#?}");
            assert_eq!(got.body.len(), 12);
            assert!(!got.has("content-range"));
        }
    }

    #[tokio::test]
    async fn if_range_with_old_etag_gives_the_whole_file() {
        let site = site();
        let got = get(
            &site,
            "/hello.txt",
            &[("range", "bytes=0-4"), ("if-range", "\"old\"")],
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        let first = get(&site, "/hello.txt", &[]).await;
        let etag = first.header("etag");
        let got = get(
            &site,
            "/hello.txt",
            &[("range", "bytes=0-4"), ("if-range", etag)],
        )
        .await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT, "{got:#?}");
    }

    #[tokio::test]
    async fn head_ignores_range() {
        let site = site();
        let got = call(&site, Method::HEAD, "/hello.txt", &[("range", "bytes=0-4")]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.header("content-length"), "12");
    }

    fn big_file(site: &Site) -> Vec<u8> {
        let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(site.root.join("big.bin"), &data).unwrap();
        data
    }

    #[tokio::test]
    async fn small_file_is_answered_from_memory_and_changes_are_seen() {
        let site = site();
        std::fs::write(site.root.join("c.txt"), "first").unwrap();
        let first = get(&site, "/c.txt", &[]).await;
        assert_eq!(first.body, "first");
        assert!(site.settings.cache.bytes() >= 5, "the file was not cached");
        // Served from memory: the file is gone, the cached copy still answers within VALID.
        std::fs::remove_file(site.root.join("c.txt")).unwrap();
        std::fs::write(site.root.join("c.txt"), "second version").unwrap();
        let deadline = Instant::now() + cache::VALID * 5;
        loop {
            let got = get(&site, "/c.txt", &[]).await;
            if got.body == "second version" {
                break;
            }
            assert_eq!(got.body, "first", "neither the old nor the new content");
            assert!(
                Instant::now() < deadline,
                "the change was not seen after VALID"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn ranges_and_validators_work_from_memory() {
        let site = site();
        std::fs::write(site.root.join("r.txt"), "0123456789").unwrap();
        let full = get(&site, "/r.txt", &[]).await;
        let etag = full.header("etag").to_string();
        let part = get(&site, "/r.txt", &[("range", "bytes=2-4")]).await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.body, "234");
        let not_modified = get(&site, "/r.txt", &[("if-none-match", &etag)]).await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn large_file_streams_with_content_length() {
        let site = site();
        let data = big_file(&site);
        // HTTP/1 on plain TCP: the file itself, never read here; its frames are placeholders
        // the socket replaces with sendfile(2) (`net/sendfile.rs`).
        let mut req = parts(Method::GET, "/big.bin", &[]);
        req.extensions.insert(crate::http::ZeroCopy);
        let res = serve(&req, "/big.bin", &site.settings).await;
        assert_eq!(res.headers()["content-length"], "1500000");
        assert!(matches!(
            res.body(),
            Body::Region {
                offset: 0,
                remaining: 1_500_000,
                ..
            }
        ));
        assert_eq!(
            http_body::Body::size_hint(res.body()).exact(),
            Some(1_500_000)
        );
        let frames = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(frames.len(), 1_500_000);
        assert!(
            frames.iter().all(|&b| b == 0),
            "placeholders, not file bytes"
        );
        // HTTP/2 and TLS frame the bytes themselves: they are read and streamed.
        let req = parts(Method::GET, "/big.bin", &[]);
        let res = serve(&req, "/big.bin", &site.settings).await;
        assert!(matches!(res.body(), Body::Stream(_)));
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(body == data[..], "streamed bytes differ");
    }

    #[tokio::test]
    async fn large_range_streams_the_right_bytes() {
        let site = site();
        let data = big_file(&site);
        let got = get(&site, "/big.bin", &[("range", "bytes=100000-499999")]).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(got.header("content-length"), "400000");
        assert!(got.body == data[100_000..500_000], "range bytes differ");
    }

    #[tokio::test]
    async fn small_body_is_one_buffer() {
        let site = site();
        let req = parts(Method::GET, "/hello.txt", &[]);
        let res = serve(&req, "/hello.txt", &site.settings).await;
        assert!(matches!(res.body(), Body::Full(_)));
    }

    fn write_siblings(site: &Site) {
        std::fs::write(site.root.join("app.js.br"), "BR").unwrap();
        std::fs::write(site.root.join("app.js.gz"), "GZ").unwrap();
    }

    #[tokio::test]
    async fn precompressed_sibling_follows_client_preference() {
        let site = site();
        write_siblings(&site);
        let plain = get(&site, "/app.js", &[]).await;
        let got = get(&site, "/app.js", &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(&got.body[..], b"BR", "{got:#?}");
        assert_eq!(got.header("content-encoding"), "br");
        assert_eq!(got.header("content-type"), "text/javascript; charset=utf-8");
        assert_eq!(got.header("vary"), "accept-encoding");
        assert_eq!(got.header("content-length"), "2");
        assert!(got.header("etag").ends_with("-br\""));
        assert_ne!(got.header("etag"), plain.header("etag"));

        let got = get(&site, "/app.js", &[("accept-encoding", "br;q=0.5, gzip")]).await;
        assert_eq!(&got.body[..], b"GZ", "{got:#?}");
        // zstd accepted but no .zst sibling: the next preference is used.
        let got = get(&site, "/app.js", &[("accept-encoding", "zstd, gzip;q=0.9")]).await;
        assert_eq!(&got.body[..], b"GZ", "{got:#?}");
    }

    #[tokio::test]
    async fn precompressed_sibling_outside_root_is_ignored() {
        let mut site = site();
        site.settings.compress = false;
        std::fs::write(site.outside.join("secret"), "SECRET").unwrap();
        symlink(site.outside.join("secret"), site.root.join("app.js.br")).unwrap();
        let got = get(&site, "/app.js", &[("accept-encoding", "br")]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(!got.has("content-encoding"), "{got:#?}");
        assert!(got.body.starts_with(b"console.log"));
    }

    #[tokio::test]
    async fn precompressed_off_serves_the_original() {
        let mut site = site();
        write_siblings(&site);
        site.settings.precompressed = false;
        site.settings.compress = false;
        let got = get(&site, "/app.js", &[("accept-encoding", "br")]).await;
        assert!(!got.has("content-encoding"), "{got:#?}");
    }

    #[tokio::test]
    async fn text_is_gzipped_on_the_fly_without_length() {
        let site = site();
        let original = std::fs::read(site.root.join("app.js")).unwrap();
        let got = get(
            &site,
            "/app.js",
            &[("accept-encoding", "gzip"), ("range", "bytes=0-3")],
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{got:#?}");
        assert_eq!(got.header("content-encoding"), "gzip");
        assert_eq!(got.header("vary"), "accept-encoding");
        assert!(got.header("etag").starts_with("W/\""), "{got:#?}");
        assert!(
            !got.has("content-length") && !got.has("accept-ranges"),
            "{got:#?}"
        );
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&got.body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, original);
    }

    #[tokio::test]
    async fn on_the_fly_etag_still_revalidates() {
        let site = site();
        let first = get(&site, "/app.js", &[("accept-encoding", "br")]).await;
        let etag = first.header("etag");
        let got = get(
            &site,
            "/app.js",
            &[("accept-encoding", "br"), ("if-none-match", etag)],
        )
        .await;
        assert_eq!(got.status, StatusCode::NOT_MODIFIED, "{got:#?}");
    }

    #[tokio::test]
    async fn head_with_on_the_fly_coding_has_no_length() {
        let site = site();
        let got = call(
            &site,
            Method::HEAD,
            "/app.js",
            &[("accept-encoding", "zstd")],
        )
        .await;
        assert_eq!(got.header("content-encoding"), "zstd");
        assert!(
            !got.has("content-length") && got.body.is_empty(),
            "{got:#?}"
        );
    }

    #[tokio::test]
    async fn small_text_is_not_compressed_but_varies() {
        let site = site();
        let got = get(&site, "/hello.txt", &[("accept-encoding", "gzip")]).await;
        assert!(!got.has("content-encoding"), "{got:#?}");
        assert_eq!(got.header("vary"), "accept-encoding");
    }

    #[tokio::test]
    async fn images_are_not_compressed() {
        let site = site();
        std::fs::write(site.root.join("pixel.png"), vec![0u8; 4096]).unwrap();
        let got = get(&site, "/pixel.png", &[("accept-encoding", "gzip")]).await;
        assert_eq!(got.header("content-type"), "image/png");
        assert!(!got.has("content-encoding") && !got.has("vary"), "{got:#?}");
    }

    #[tokio::test]
    async fn identity_only_client_gets_identity() {
        let site = site();
        let got = get(
            &site,
            "/app.js",
            &[("accept-encoding", "gzip;q=0, identity")],
        )
        .await;
        assert!(!got.has("content-encoding"), "{got:#?}");
        assert_eq!(got.header("accept-ranges"), "bytes");
    }

    #[test]
    fn etag_shape() {
        let t = UNIX_EPOCH + Duration::from_nanos(0x1234);
        assert_eq!(
            entity_tag(255, Some(t), None, false).to_string(),
            "\"ff-1234\""
        );
        assert_eq!(
            entity_tag(255, Some(t), Some(Coding::Gzip), false).to_string(),
            "\"ff-1234-gzip\""
        );
        assert_eq!(entity_tag(1, None, None, true).to_string(), "W/\"1-0\"");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("a.json"), "application/json");
        assert_eq!(content_type("a.svg"), "image/svg+xml");
        assert_eq!(
            content_type("a.mjs"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(content_type("README"), "application/octet-stream");
    }
}
