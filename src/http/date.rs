//! The `Date` field of responses written without hyper (the express lane, `edge/express.rs`),
//! formatted once per second per thread, as hyper does for its own responses.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `date: <IMF-fixdate>` plus the CR LF ending the field and the blank line ending the head.
pub type DateLine = [u8; DATE_LINE_LEN];

const DATE_LINE_LEN: usize = b"date: Tue, 01 Dec 2026 21:05:46 GMT\r\n\r\n".len();

thread_local! {
    /// (the second it was made for, the line).
    static CACHED: RefCell<(u64, DateLine)> = const { RefCell::new((u64::MAX, [0; DATE_LINE_LEN])) };
}

/// The date field and the head's final blank line, for now.
pub fn date_line() -> DateLine {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let text = format!("date: {}\r\n\r\n", httpdate::fmt_http_date(now));
            // IMF-fixdate has a fixed width for years 1000 to 9999.
            if text.len() == DATE_LINE_LEN {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            }
        }
        cached.1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_a_date_field_and_the_end_of_the_head() {
        let line = date_line();
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with("date: "), "{text}");
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        let value = &text["date: ".len()..text.len() - 4];
        let parsed = httpdate::parse_http_date(value).unwrap();
        let age = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(age.as_secs() <= 2, "{value} is not now");
    }
}
