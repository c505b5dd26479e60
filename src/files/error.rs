//! Why a static file request could not be answered with the file, and the status that says so.
//!
//! Built by `path.rs` (the URL path was unsafe or named nothing) and `serve.rs` (the folder has
//! no index, the method is wrong, the disk failed). `serve` turns every error into an error
//! page through [`Error::status`]; no caller matches on the message text.
//!
//! Side: every variant except [`Error::Io`] is the client's (4xx, retrying the same request
//! gives the same answer). [`Error::Io`] is portico's or the disk's (500, a retry may succeed).

use std::io;

use http::StatusCode;

/// A static file request that cannot be answered with the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request path is malformed or tries to leave the root (400).
    #[error("bad request path: {0}")]
    BadPath(#[from] PathProblem),
    /// The method is neither GET nor HEAD (405; the response lists `Allow: GET, HEAD`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Nothing by that name under the root, or a file named with a trailing slash (404).
    #[error("not found")]
    NotFound,
    /// The name resolves, through a symlink, to a place outside the root while
    /// `follow_symlinks_outside` is off (403).
    #[error("symlink leads outside the root")]
    OutsideRoot,
    /// The name is a FIFO, socket or device rather than a regular file or folder (403).
    #[error("not a regular file or folder")]
    SpecialFile,
    /// A folder without an index file while listings are off (403, as nginx).
    #[error("folder has no index file and listing is off")]
    NoIndex,
    /// The operating system refused access, or symlinks loop (403).
    #[error("access denied by the file system")]
    Denied,
    /// Any other I/O failure (500).
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
}

impl Error {
    /// The response status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadPath(_) => StatusCode::BAD_REQUEST,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::OutsideRoot | Error::SpecialFile | Error::NoIndex | Error::Denied => {
                StatusCode::FORBIDDEN
            }
            Error::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<io::Error> for Error {
    /// Maps the errors a lookup under the root can meet: a missing name or a file used as a
    /// folder is 404, a refusal or a symlink loop is 403, the rest is 500.
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::InvalidFilename => Error::NotFound,
            io::ErrorKind::PermissionDenied => Error::Denied,
            _ if err.raw_os_error() == Some(libc::ELOOP) => Error::Denied,
            _ => Error::Io(err),
        }
    }
}

/// What is wrong with a request path (all answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// The path does not start with `/`.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// A NUL byte, raw or as `%00`.
    #[error("NUL byte")]
    Nul,
    /// Another control character (U+0001 to U+001F, U+007F), raw or encoded.
    #[error("control character")]
    ControlChar,
    /// `%2F`: a slash inside a segment would change which folder is meant.
    #[error("encoded slash")]
    EncodedSlash,
    /// A backslash, raw or as `%5C` (a separator on Windows).
    #[error("backslash")]
    Backslash,
    /// The decoded bytes are not UTF-8.
    #[error("not UTF-8 after percent-decoding")]
    NotUtf8,
    /// A `..` segment, in any spelling (`%2e%2e`, `.%2E`, `..;x`, `...`).
    #[error("dot-dot segment")]
    DotDot,
    /// A segment that looks like a Windows drive (`C:`).
    #[error("drive letter")]
    DriveLetter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_client_statuses() {
        let missing = Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let denied = Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        let looped = Error::from(io::Error::from_raw_os_error(libc::ELOOP));
        assert_eq!(looped.status(), StatusCode::FORBIDDEN);
        let other = Error::from(io::Error::other("disk on fire"));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn bad_path_is_400() {
        assert_eq!(
            Error::from(PathProblem::DotDot).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
