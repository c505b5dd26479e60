//! Message framing (RFC 9112 §6, §7.1) as bytes go by: `Content-Length` values, and where a
//! chunked body ends, found without decoding it. One scanner for both directions: the gate
//! (`edge/gate.rs`) on request bodies it passes to hyper, the express proxy
//! (`edge/express_proxy.rs`) on member responses it relays.

/// Longest chunk-extension or trailer line accepted.
pub const MAX_LINE: usize = 8 * 1024;

/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`; a list of equal values is also tolerated.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let mut result = None;
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = part.parse().ok()?;
        if result.is_some_and(|prev| prev != n) {
            return None;
        }
        result = Some(n);
    }
    result
}

/// Position inside a chunked body (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Reading the hex size; `digits` seen so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: extensions up to CR; `len` bytes of them so far.
    Extension {
        size: u64,
        len: usize,
    },
    /// Expecting LF after CR ending a size line.
    SizeLf {
        size: u64,
    },
    /// This many data bytes left.
    Data(u64),
    /// Expecting CR then LF after data.
    DataCr,
    DataLf,
    /// In the trailer section: at the start of a line (`line_len` 0) or inside one.
    Trailer {
        line_len: usize,
    },
    /// Expecting LF after CR in the trailer section.
    TrailerLf {
        line_len: usize,
    },
}

impl Default for Chunk {
    /// The start of a chunked body.
    fn default() -> Self {
        Chunk::Size { size: 0, digits: 0 }
    }
}

/// Scans chunked framing from `chunk` over `bytes`: how many bytes belong to the body, and the
/// new position (`None` once the body, trailers included, ended).
pub fn scan_chunked(
    mut chunk: Chunk,
    bytes: &[u8],
) -> Result<(usize, Option<Chunk>), &'static str> {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        chunk = match chunk {
            Chunk::Size { size, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= 15 {
                        return Err("chunk size too large");
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    Chunk::Size {
                        size: size * 16 + d,
                        digits: digits + 1,
                    }
                }
                b';' | b' ' | b'\t' if digits > 0 => Chunk::Extension { size, len: 1 },
                b'\r' if digits > 0 => Chunk::SizeLf { size },
                _ => return Err("invalid chunk size"),
            },
            Chunk::Extension { size, len } => match b {
                b'\r' => Chunk::SizeLf { size },
                b'\n' => return Err("bare LF in chunk extension"),
                _ if len >= MAX_LINE => return Err("chunk extension too long"),
                _ => Chunk::Extension { size, len: len + 1 },
            },
            Chunk::SizeLf { size } => match b {
                b'\n' if size == 0 => Chunk::Trailer { line_len: 0 },
                b'\n' => Chunk::Data(size),
                _ => return Err("invalid chunk size line"),
            },
            Chunk::Data(left) => {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                chunk = if take == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take)
                };
                continue;
            }
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                _ => return Err("chunk data not followed by CRLF"),
            },
            Chunk::DataLf => match b {
                b'\n' => Chunk::Size { size: 0, digits: 0 },
                _ => return Err("chunk data not followed by CRLF"),
            },
            Chunk::Trailer { line_len } => match b {
                b'\r' => Chunk::TrailerLf { line_len },
                b'\n' => return Err("bare LF in trailer"),
                _ if line_len >= MAX_LINE => return Err("trailer line too long"),
                _ => Chunk::Trailer {
                    line_len: line_len + 1,
                },
            },
            Chunk::TrailerLf { line_len } => match b {
                b'\n' if line_len == 0 => return Ok((i + 1, None)),
                b'\n' => Chunk::Trailer { line_len: 0 },
                _ => return Err("bare CR in trailer"),
            },
        };
        i += 1;
    }
    Ok((i, Some(chunk)))
}

/// [`scan_chunked`] over a body arriving in pieces.
#[derive(Debug, Default)]
pub struct ChunkScanner {
    state: Chunk,
    /// The body ended: nothing more belongs to it.
    ended: bool,
}

/// A chunked body that breaks RFC 9112 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct BadChunk;

impl ChunkScanner {
    /// Takes the next bytes; `Ok(Some(n))` when the body ends after the first `n` of them,
    /// `Ok(None)` when it goes on, `Err` for a malformed body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, BadChunk> {
        if self.ended {
            return Ok(Some(0));
        }
        match scan_chunked(self.state, bytes) {
            Ok((n, None)) => {
                self.ended = true;
                Ok(Some(n))
            }
            Ok((_, Some(next))) => {
                self.state = next;
                Ok(None)
            }
            Err(_) => Err(BadChunk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(body: &[u8], split: usize) -> Result<Option<usize>, BadChunk> {
        let mut scanner = ChunkScanner::default();
        let (a, b) = body.split_at(split.min(body.len()));
        match scanner.feed(a)? {
            Some(n) => Ok(Some(n)),
            None => Ok(scanner.feed(b)?.map(|n| a.len() + n)),
        }
    }

    #[test]
    fn the_end_of_a_chunked_body_is_found_wherever_the_bytes_split() {
        let body =
            b"5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..body.len() {
            assert_eq!(end_of(body, split), Ok(Some(end)), "split at {split}");
        }
        assert_eq!(end_of(b"0\r\n\r\n", 1), Ok(Some(5)));
        assert_eq!(end_of(b"3\r\nabc\r\n", 4), Ok(None));
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"5\nhello",
            b"ffffffffffffffffff\r\n",
            b"0\r\nbad\nline\r\n\r\n",
        ] {
            assert_eq!(ChunkScanner::default().feed(bad), Err(BadChunk), "{bad:?}");
        }
    }

    #[test]
    fn content_length_is_digits_or_a_list_of_equal_values() {
        assert_eq!(parse_content_length(b"12"), Some(12));
        assert_eq!(parse_content_length(b" 7 , 7"), Some(7));
        assert_eq!(parse_content_length(b"7, 8"), None);
        assert_eq!(parse_content_length(b"+5"), None);
        assert_eq!(parse_content_length(b""), None);
    }
}
