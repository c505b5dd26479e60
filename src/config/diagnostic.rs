//! Diagnostics: what is wrong with a configuration, where (file, line, column) and a hint.
//!
//! `portico check` and `portico serve` print [`Diagnostics`] with `Display`, in the format of
//! the configuration contract:
//!
//! ```text
//! error: /path/portico.toml:12:5: unknown field `rooot`, expected one of `root`, `index`, ...
//!   hint: <a hint when there is one>
//! ```
//!
//! A configuration built in code (the `file-server` quick start, the built-in demo) has no text,
//! so its values carry an empty span and an [`Origin`] names it instead of a line:
//! `error: (command line): ...`. Lines and columns are 1-based; columns count characters.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a raw configuration came from; it turns a span into a place for a diagnostic, and
/// gives the folder relative paths start from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A file (or text standing for one, as in `portico check`): diagnostics give its path,
    /// line and column; relative paths in it start at its folder.
    File { path: &'a Path, source: &'a str },
    /// Built from command-line flags (`portico file-server`): no lines; relative paths start at
    /// the current folder.
    CommandLine,
    /// The built-in demo: no lines; its paths are absolute.
    Demo,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The configuration file, or for a configuration built in code a label in parentheses:
    /// `(command line)`, `(built-in demo)`.
    pub path: PathBuf,
    /// 1-based line of the offending value; `None` when the problem has no place in the text
    /// (an unreadable file, a configuration built in code).
    pub line: Option<usize>,
    /// 1-based column, in characters; present exactly when `line` is.
    pub column: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, when there is something more useful to say than the message.
    pub hint: Option<String>,
}

/// Every problem found in a configuration, in the order found (the order of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Origin<'_> {
    /// A diagnostic about the text at `span`; `None` for a problem with the whole file.
    pub fn diagnostic(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (path, position) = match self {
            Origin::File { path, source } => (
                path.to_path_buf(),
                span.map(|s| line_column(source, s.start)),
            ),
            Origin::CommandLine => (PathBuf::from("(command line)"), None),
            Origin::Demo => (PathBuf::from("(built-in demo)"), None),
        };
        Diagnostic {
            path,
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
            message: message.into(),
            hint,
        }
    }

    /// The folder relative paths start from: the file's folder, else the current folder.
    pub fn folder(&self) -> &Path {
        match self {
            Origin::File { path, .. } => path.parent().unwrap_or(Path::new("")),
            Origin::CommandLine | Origin::Demo => Path::new(""),
        }
    }
}

impl Diagnostic {
    /// The file could not be read at all.
    pub fn file_error(path: &Path, error: &io::Error) -> Self {
        let hint = (error.kind() == io::ErrorKind::NotFound)
            .then_some("check the path given with -c; relative paths start at the current folder");
        Diagnostic {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read the configuration: {error}"),
            hint: hint.map(str::to_string),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `error: FILE:LINE:COL: message`, then `  hint: ...` on its own line when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Diagnostics {
    pub fn single(diagnostic: Diagnostic) -> Self {
        Diagnostics(vec![diagnostic])
    }
}

impl fmt::Display for Diagnostics {
    /// One block per problem, each ending in a newline, ready for `eprint!`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The 1-based line and column (in characters) of a byte offset. An offset past the end is
/// taken as the end; one inside a character as that character's start.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_counts_characters() {
        let source = "a = 1\nbé = 2\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 4), (1, 5));
        assert_eq!(line_column(source, 6), (2, 1));
        // `=` on line 2 is byte 10 but character 4 ("bé " is four bytes, three characters).
        assert_eq!(line_column(source, 10), (2, 4));
        assert_eq!(line_column(source, 8), (2, 2)); // inside `é`: its start
        assert_eq!(line_column(source, 1000), (3, 1));
        assert_eq!(line_column("", 5), (1, 1));
    }

    #[test]
    fn display_follows_the_contract() {
        let source = "[server]\nthreads = 0\n";
        let origin = Origin::File {
            path: Path::new("/etc/portico.toml"),
            source,
        };
        let d = origin.diagnostic(
            Some(19..20),
            "`threads` must be at least 1",
            Some("omit it".into()),
        );
        let plain = origin.diagnostic(Some(0..8), "something", None);
        assert_eq!(
            Diagnostics(vec![d, plain]).to_string(),
            "error: /etc/portico.toml:2:11: `threads` must be at least 1\n  hint: omit it\n\
             error: /etc/portico.toml:1:1: something\n"
        );
    }

    #[test]
    fn built_configurations_are_named_instead_of_located() {
        let d = Origin::CommandLine.diagnostic(Some(0..0), "root is missing", None);
        assert_eq!(d.to_string(), "error: (command line): root is missing");
        let d = Origin::Demo.diagnostic(None, "x", Some("y".into()));
        assert_eq!(d.to_string(), "error: (built-in demo): x\n  hint: y");
    }

    #[test]
    fn file_error_names_the_file_without_a_line() {
        let error = io::Error::new(io::ErrorKind::NotFound, "gone");
        let d = Diagnostic::file_error(Path::new("x.toml"), &error);
        assert_eq!(d.line, None);
        assert!(
            d.to_string()
                .starts_with("error: x.toml: cannot read the configuration: gone")
        );
    }
}
