//! The disk tier's file format: one stored response per file, self-describing and checked.
//!
//! ```text
//! "PORTICO-CACHE-1\n"                      magic and version (16 bytes)
//! key, status, request/response times,     the metadata, length-prefixed fields (little
//! coding, Vary fields, tags, header block    endian); the header block is `name: value\r\n`
//! u64 body length, body
//! SHA-256 of everything above (32 bytes)
//! ```
//!
//! [`decode`] refuses a file whose magic, lengths or checksum are wrong, or whose key is not
//! the one asked for (a hash collision in the file name), so a torn write after a crash or a
//! flipped bit on disk is a miss, never a wrong answer. Writing goes through a temporary file
//! renamed into place (`fs::write_atomic`), so readers see whole files.

use std::time::{Duration, SystemTime};

use aws_lc_rs::digest::{SHA256, digest};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::key::Variant;
use super::memory::Object;
use super::rules::Received;

const MAGIC: &[u8; 16] = b"PORTICO-CACHE-1\n";
const DIGEST_LEN: usize = 32;

/// Why a file cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    #[error("not a portico cache file (or another version)")]
    Magic,
    #[error("truncated or malformed")]
    Malformed,
    #[error("checksum mismatch")]
    Checksum,
    #[error("the file holds another key")]
    OtherKey,
}

/// The bytes of a file holding `object`.
pub fn encode(object: &Object) -> Vec<u8> {
    let mut out = Vec::with_capacity(object.body.len() + 512);
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, object.key.as_bytes());
    out.extend_from_slice(&object.status.as_u16().to_le_bytes());
    put_time(&mut out, object.received.request_time);
    put_time(&mut out, object.received.response_time);
    put_bytes(
        &mut out,
        object.variant.coding.as_deref().unwrap_or("").as_bytes(),
    );
    out.extend_from_slice(&(object.variant.fields.len() as u32).to_le_bytes());
    for (name, value) in &object.variant.fields {
        put_bytes(&mut out, name.as_str().as_bytes());
        out.push(u8::from(value.is_some()));
        put_bytes(&mut out, value.as_deref().unwrap_or("").as_bytes());
    }
    out.extend_from_slice(&(object.tags.len() as u32).to_le_bytes());
    for tag in &object.tags {
        put_bytes(&mut out, tag.as_bytes());
    }
    let mut block = Vec::new();
    for (name, value) in &object.headers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    put_bytes(&mut out, &block);
    out.extend_from_slice(&(object.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&object.body);
    let sum = digest(&SHA256, &out);
    out.extend_from_slice(sum.as_ref());
    out
}

/// The object in `bytes` if it is whole, unchanged, and stored under `key`.
pub fn decode(bytes: &[u8], key: &str) -> Result<Object, Corrupt> {
    if bytes.len() < MAGIC.len() + DIGEST_LEN || !bytes.starts_with(MAGIC) {
        return Err(Corrupt::Magic);
    }
    let (content, sum) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if digest(&SHA256, content).as_ref() != sum {
        return Err(Corrupt::Checksum);
    }
    let mut r = Reader {
        bytes: content,
        at: MAGIC.len(),
    };
    let stored_key = r.string()?;
    if stored_key != key {
        return Err(Corrupt::OtherKey);
    }
    let status =
        StatusCode::from_u16(u16::from_le_bytes(r.array()?)).map_err(|_| Corrupt::Malformed)?;
    let received = Received {
        request_time: r.time()?,
        response_time: r.time()?,
    };
    let coding = Some(r.string()?).filter(|c| !c.is_empty());
    let mut fields = Vec::new();
    for _ in 0..r.u32()? {
        let name = HeaderName::from_bytes(r.bytes()?).map_err(|_| Corrupt::Malformed)?;
        let present = r.array::<1>()?[0] == 1;
        let value = r.string()?;
        fields.push((name, present.then_some(value)));
    }
    let mut tags = Vec::new();
    for _ in 0..r.u32()? {
        tags.push(r.string()?);
    }
    let mut headers = HeaderMap::new();
    for line in r.bytes()?.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Corrupt::Malformed)?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| Corrupt::Malformed)?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii_start())
            .map_err(|_| Corrupt::Malformed)?;
        headers.append(name, value);
    }
    let length = usize::try_from(u64::from_le_bytes(r.array()?)).map_err(|_| Corrupt::Malformed)?;
    if r.at + length != content.len() {
        return Err(Corrupt::Malformed);
    }
    let body = Bytes::copy_from_slice(&content[r.at..]);
    Ok(Object {
        key: stored_key,
        variant: Variant { fields, coding },
        status,
        headers,
        body,
        received,
        tags,
        seq: 0,
    })
}

/// The key a file says it holds, without checking the rest (to decode it next).
pub fn peek_key(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(MAGIC) {
        return None;
    }
    let mut r = Reader {
        bytes,
        at: MAGIC.len(),
    };
    r.string().ok()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_time(out: &mut Vec<u8>, time: SystemTime) {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    out.extend_from_slice(&since.as_secs().to_le_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.at.checked_add(n).ok_or(Corrupt::Malformed)?;
        let slice = self.bytes.get(self.at..end).ok_or(Corrupt::Malformed)?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        self.take(N)?.try_into().map_err(|_| Corrupt::Malformed)
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| Corrupt::Malformed)
    }

    fn time(&mut self) -> Result<SystemTime, Corrupt> {
        let secs = u64::from_le_bytes(self.array()?);
        let nanos = u32::from_le_bytes(self.array()?);
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos.min(999_999_999)))
            .ok_or(Corrupt::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Object {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        headers.insert("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        Object {
            key: "https://a.test/p?q=1".into(),
            variant: Variant {
                fields: vec![
                    (http::header::ACCEPT_LANGUAGE, Some("en, fr".into())),
                    (HeaderName::from_static("x-mode"), None),
                ],
                coding: Some("gzip".into()),
            },
            status: StatusCode::NOT_FOUND,
            headers,
            body: Bytes::from_static(b"\x00binary\xffbody"),
            received: Received {
                request_time: SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 5),
                response_time: SystemTime::UNIX_EPOCH + Duration::new(1_800_000_001, 7),
            },
            tags: vec!["t1".into(), "t2".into()],
            seq: 9,
        }
    }

    #[test]
    fn an_object_round_trips() {
        let object = sample();
        let back = decode(&encode(&object), &object.key).unwrap();
        assert_eq!(back.key, object.key);
        assert_eq!(back.variant, object.variant);
        assert_eq!(back.status, object.status);
        assert_eq!(back.headers, object.headers);
        assert_eq!(back.body, object.body);
        assert_eq!(back.received, object.received);
        assert_eq!(back.tags, object.tags);
    }

    #[test]
    fn any_damage_is_refused() {
        let object = sample();
        let good = encode(&object);
        assert_eq!(
            decode(&good, "https://a.test/other").err(),
            Some(Corrupt::OtherKey)
        );
        // Every flipped byte is caught.
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad, &object.key).is_err(), "byte {i}");
        }
        // Every truncation is caught.
        for len in [0, 10, 16, 40, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..len], &object.key).is_err(), "length {len}");
        }
        assert_eq!(
            decode(
                b"GARBAGE-GARBAGE-GARBAGE-GARBAGE-GARBAGE-GARBAGE-GARBAGE",
                "k"
            )
            .err(),
            Some(Corrupt::Magic)
        );
    }
}
