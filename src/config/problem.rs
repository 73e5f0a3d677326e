//! `Problem` (one thing wrong with a configuration file, located by key path and
//! line) and `ConfigError` (why a file could not become a `Config`).
//!
//! The format is fixed and documented in `docs/configuration.md`:
//! `FILE:LINE: KEY.PATH: MESSAGE`, where `LINE` and `KEY.PATH` are left out when a
//! problem has none (a missing environment variable has a line but no key; a missing
//! table has a key but no line). Nothing here ever formats a secret: messages are
//! built by the loader, which redacts the token.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `github.repositories[1].name`; `None` for problems of the
    /// text itself (syntax, environment variables).
    pub path: Option<String>,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, e.g. `expected "owner/name", got "acme"`.
    pub message: String,
}

impl Problem {
    /// A problem of the text at a line, with no key path.
    pub fn at_line(line: usize, message: String) -> Self {
        Problem {
            path: None,
            line: Some(line),
            message,
        }
    }

    /// A problem of the value at `path`.
    pub fn at_path(path: impl Into<String>, line: Option<usize>, message: String) -> Self {
        Problem {
            path: Some(path.into()),
            line,
            message,
        }
    }

    /// The problem in the `FILE:LINE: KEY.PATH: MESSAGE` form.
    pub fn in_file<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        InFile {
            problem: self,
            file,
        }
    }
}

/// `line N: KEY.PATH: MESSAGE` (without a file name).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

struct InFile<'a> {
    problem: &'a Problem,
    file: &'a Path,
}

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(line) = self.problem.line {
            write!(f, "{line}:")?;
        }
        if let Some(path) = &self.problem.path {
            write!(f, " {path}:")?;
        }
        write!(f, " {}", self.problem.message)
    }
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, unreadable, a directory).
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has at least one problem; all of them are listed.
    #[error("{}", render_invalid(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_invalid(path: &Path, problems: &[Problem]) -> String {
    let count = problems.len();
    let mut text = format!(
        "invalid configuration file {} ({count} problem{}):",
        path.display(),
        if count == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push('\n');
        text.push_str(&problem.in_file(path).to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_and_without_line_and_path() {
        let file = Path::new("dora.toml");
        let cases = [
            (
                Problem::at_path("server.listen", Some(2), "bad".to_owned()),
                "line 2: server.listen: bad",
                "dora.toml:2: server.listen: bad",
            ),
            (
                Problem::at_path("github", None, "missing".to_owned()),
                "github: missing",
                "dora.toml: github: missing",
            ),
            (
                Problem::at_line(7, "environment variable X is not set".to_owned()),
                "line 7: environment variable X is not set",
                "dora.toml:7: environment variable X is not set",
            ),
        ];
        for (problem, plain, located) in cases {
            assert_eq!(problem.to_string(), plain);
            assert_eq!(problem.in_file(file).to_string(), located);
        }
    }

    #[test]
    fn invalid_error_lists_every_problem() {
        let error = ConfigError::Invalid {
            path: PathBuf::from("c.toml"),
            problems: vec![
                Problem::at_line(1, "a".to_owned()),
                Problem::at_path("x", Some(3), "b".to_owned()),
            ],
        };
        assert_eq!(
            error.to_string(),
            "invalid configuration file c.toml (2 problems):\nc.toml:1: a\nc.toml:3: x: b"
        );
    }
}
