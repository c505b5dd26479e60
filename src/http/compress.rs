//! Content coding: `Accept-Encoding` negotiation (RFC 9110 §12.5.3), which media types are worth
//! compressing, and a streaming encoder body (brotli, zstd, gzip).
//!
//! Called by `files::serve` to pick a precompressed sibling or an on-the-fly coding. The
//! negotiation is a pure function of the request headers; [`encode`] wraps any `AsyncBufRead`
//! so the response streams without ever holding the whole output.
//!
//! Choices: the server prefers br, then zstd, then gzip when the client weighs them equally;
//! a request without `Accept-Encoding` gets identity (RFC 9110 §12.5.3 allows any coding then,
//! but old clients that omit the field often cannot decode one).

use http::HeaderValue;
use http::header::{self, HeaderMap};
use tokio::io::AsyncBufRead;

use crate::http::Body;
use crate::http::reader::ReaderBody;

/// A content coding portico can produce (RFC 9110 §8.4.1), in server preference order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
    /// `gzip` (RFC 1952; `x-gzip` is the same, RFC 9110 §8.4.1.3).
    Gzip,
}

impl Coding {
    /// Every coding, best first: the server's order of preference.
    pub const ALL: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The file name extension of a precompressed sibling (`app.js.br`), without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zst",
            Coding::Gzip => "gz",
        }
    }

    /// The `Content-Encoding` value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.token())
    }
}

/// The codings of `offered` the client accepts, best first by its `q` values, server order
/// breaking ties (RFC 9110 §12.5.3). Codings with `q=0`, and codings the client weighs below an
/// explicit `identity`, are left out. Empty: send identity.
pub fn negotiate(headers: &HeaderMap, offered: &[Coding]) -> Vec<Coding> {
    negotiate_values(
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        offered,
    )
}

/// [`negotiate`] over the `Accept-Encoding` values themselves (each one field's text).
pub fn negotiate_values<'a>(
    values: impl Iterator<Item = &'a str>,
    offered: &[Coding],
) -> Vec<Coding> {
    let mut values = values.peekable();
    if values.peek().is_none() {
        return Vec::new();
    }
    let mut weights = Weights::default();
    for text in values {
        weights.add(text);
    }
    let mut ranked: Vec<(u16, usize, Coding)> = Coding::ALL
        .iter()
        .enumerate()
        .filter(|(_, coding)| offered.contains(coding))
        .filter_map(|(order, &coding)| {
            let q = weights.of(coding.token()).or(weights.any)?;
            let floor = weights.of("identity").unwrap_or(0);
            (q > 0 && q >= floor).then_some((q, order, coding))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, coding)| coding).collect()
}

/// Whether a media type (without parameters or with them) is text-like and worth compressing:
/// `text/*`, JSON, JavaScript, XML and SVG, `+json` and `+xml` types, WebAssembly, uncompressed
/// fonts and icons. Images, audio, video and archives are already compressed.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "application" => {
            matches!(
                subtype,
                "json"
                    | "javascript"
                    | "x-javascript"
                    | "ecmascript"
                    | "xml"
                    | "wasm"
                    | "x-sh"
                    | "x-tar"
                    | "vnd.ms-fontobject"
                    | "x-font-ttf"
                    | "x-font-otf"
                    | "toml"
                    | "yaml"
                    | "x-yaml"
                    | "graphql"
            ) || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
        }
        "image" => matches!(subtype, "svg+xml" | "x-icon" | "vnd.microsoft.icon" | "bmp"),
        "font" => matches!(subtype, "ttf" | "otf" | "collection"),
        _ => false,
    }
}

/// A body that compresses `reader` as it is read; its length is unknown, so the response
/// has no `Content-Length` and goes out chunked (HTTP/1.1) or in DATA frames (HTTP/2).
///
/// Levels favour speed, as for every on-the-fly compressor: brotli quality 4 (its default, 11,
/// is meant for precompression), zstd 3 and gzip 6 (their defaults).
pub fn encode<R>(reader: R, coding: Coding) -> Body
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    use async_compression::Level;
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};

    match coding {
        Coding::Brotli => Body::stream(ReaderBody::new(
            BrotliEncoder::with_quality(reader, Level::Precise(BROTLI_QUALITY)),
            ENCODED_CHUNK_BYTES,
        )),
        Coding::Zstd => Body::stream(ReaderBody::new(
            ZstdEncoder::with_quality(reader, Level::Default),
            ENCODED_CHUNK_BYTES,
        )),
        Coding::Gzip => Body::stream(ReaderBody::new(
            GzipEncoder::with_quality(reader, Level::Default),
            ENCODED_CHUNK_BYTES,
        )),
    }
}

/// Parsed `Accept-Encoding` weights, in thousandths.
#[derive(Debug, Default)]
struct Weights {
    /// `(lower-case coding, q)` in the order given; the first mention of a coding counts.
    listed: Vec<(String, u16)>,
    /// The weight of `*`, if present.
    any: Option<u16>,
}

impl Weights {
    /// Adds the members of one field line: `#( codings [ weight ] )` (RFC 9110 §12.5.3).
    /// A member with an invalid weight is skipped, as if not sent.
    fn add(&mut self, text: &str) {
        for member in text.split(',') {
            let mut parts = member.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            let mut q = Some(1000);
            for param in parts {
                let Some((name, value)) = param.trim().split_once('=') else {
                    q = None;
                    break;
                };
                if name.trim_end().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(value.trim_start());
                }
            }
            let Some(q) = q else { continue };
            let coding = if coding == "x-gzip" {
                "gzip".to_string()
            } else {
                coding
            };
            if coding == "*" {
                self.any.get_or_insert(q);
            } else if self.of(&coding).is_none() {
                self.listed.push((coding, q));
            }
        }
    }

    fn of(&self, token: &str) -> Option<u16> {
        self.listed
            .iter()
            .find(|(c, _)| c == token)
            .map(|&(_, q)| q)
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2), in
/// thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (text, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, digit) in frac.bytes().enumerate() {
        thousandths += u16::from(digit - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Brotli quality for on-the-fly compression (0-11).
const BROTLI_QUALITY: i32 = 4;
/// Largest frame of compressed output.
const ENCODED_CHUNK_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use std::io::Read;

    use http_body_util::BodyExt;

    use super::*;

    fn accept(value: &str) -> Vec<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate(&headers, &Coding::ALL)
    }

    use Coding::{Brotli, Gzip, Zstd};

    #[test]
    fn absent_header_means_identity() {
        assert!(negotiate(&HeaderMap::new(), &Coding::ALL).is_empty());
    }

    #[test]
    fn empty_header_means_identity() {
        assert!(accept("").is_empty());
    }

    #[test]
    fn equal_weights_follow_server_order() {
        assert_eq!(accept("gzip, deflate, br, zstd"), vec![Brotli, Zstd, Gzip]);
    }

    #[test]
    fn client_weights_win_over_server_order() {
        assert_eq!(
            accept("br;q=0.5, gzip;q=0.9, zstd;q=0.7"),
            vec![Gzip, Zstd, Brotli]
        );
    }

    #[test]
    fn zero_weight_excludes() {
        assert_eq!(accept("br;q=0, gzip"), vec![Gzip]);
        assert_eq!(accept("gzip;q=0.000"), Vec::<Coding>::new());
    }

    #[test]
    fn star_covers_unlisted_codings() {
        assert_eq!(accept("*"), vec![Brotli, Zstd, Gzip]);
        assert_eq!(accept("br;q=0, *;q=0.5"), vec![Zstd, Gzip]);
        assert_eq!(accept("gzip, *;q=0"), vec![Gzip]);
    }

    #[test]
    fn identity_preferred_over_codings_drops_them() {
        assert_eq!(accept("gzip;q=0.5, identity"), Vec::<Coding>::new());
        assert_eq!(accept("gzip;q=0.5, br, identity;q=0.7"), vec![Brotli]);
    }

    #[test]
    fn identity_refused_still_leaves_codings() {
        assert_eq!(accept("identity;q=0, gzip"), vec![Gzip]);
        assert_eq!(accept("identity;q=0"), Vec::<Coding>::new());
    }

    #[test]
    fn tokens_and_q_are_case_insensitive_and_allow_spaces() {
        assert_eq!(accept("GZIP ; Q=0.5 , Br;q=1.0"), vec![Brotli, Gzip]);
    }

    #[test]
    fn x_gzip_is_gzip() {
        assert_eq!(accept("x-gzip"), vec![Gzip]);
    }

    #[test]
    fn invalid_weights_skip_the_member() {
        assert_eq!(accept("br;q=2, gzip;q=0.5"), vec![Gzip]);
        assert_eq!(
            accept("br;q=0.5555, zstd;q=abc, gzip;q=1.001"),
            Vec::<Coding>::new()
        );
        assert_eq!(accept("br;q, gzip;q=1."), vec![Gzip]);
    }

    #[test]
    fn first_mention_counts() {
        assert_eq!(accept("gzip;q=0, gzip"), Vec::<Coding>::new());
    }

    #[test]
    fn only_offered_codings_are_returned() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip"),
        );
        assert_eq!(negotiate(&headers, &[Gzip]), vec![Gzip]);
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0.5"),
        );
        headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static("zstd"));
        assert_eq!(negotiate(&headers, &Coding::ALL), vec![Zstd, Gzip]);
    }

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0."), Some(0));
        assert_eq!(parse_qvalue("0.0001"), None);
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("-0"), None);
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "application/json",
            "application/javascript",
            "image/svg+xml",
            "application/xml",
            "application/ld+json",
            "application/atom+xml",
            "application/wasm",
            "TEXT/PLAIN",
        ] {
            assert!(is_compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "video/mp4",
            "application/zip",
            "font/woff2",
            "",
            "text",
        ] {
            assert!(!is_compressible(t), "{t}");
        }
    }

    async fn round_trip(coding: Coding) -> Vec<u8> {
        let input = "hello portico ".repeat(1000);
        let body = encode(std::io::Cursor::new(input.clone().into_bytes()), coding);
        let encoded = body.collect().await.unwrap().to_bytes();
        assert!(
            encoded.len() < input.len() / 10,
            "{coding:?} did not compress"
        );
        encoded.to_vec()
    }

    #[tokio::test]
    async fn gzip_round_trips() {
        let encoded = round_trip(Gzip).await;
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&encoded[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "hello portico ".repeat(1000));
    }

    #[tokio::test]
    async fn brotli_and_zstd_round_trip() {
        use async_compression::tokio::bufread::{BrotliDecoder, ZstdDecoder};
        use tokio::io::AsyncReadExt;

        let mut decoded = String::new();
        let br = round_trip(Brotli).await;
        BrotliDecoder::new(&br[..])
            .read_to_string(&mut decoded)
            .await
            .unwrap();
        assert_eq!(decoded, "hello portico ".repeat(1000));

        decoded.clear();
        let zst = round_trip(Zstd).await;
        ZstdDecoder::new(&zst[..])
            .read_to_string(&mut decoded)
            .await
            .unwrap();
        assert_eq!(decoded, "hello portico ".repeat(1000));
    }
}
