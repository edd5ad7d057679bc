//! One line of an app's log, and which lines a reader wants.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// Dyno lines longer than this are split into several log lines.
pub const MAX_LINE_BYTES: usize = 10_000;

/// `app` for what dynos write, `heroku` for what the platform says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    App,
    Heroku,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::App => "app",
            Source::Heroku => "heroku",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        match text {
            "app" => Some(Source::App),
            "heroku" => Some(Source::Heroku),
            _ => None,
        }
    }
}

/// One line of an app's log, displayed as `2026-11-26T12:00:00.123456+00:00 app[web.1]: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: DateTime<Utc>,
    pub source: Source,
    /// `web.1`, `router`, `api`, `build`, ...
    pub process: String,
    pub message: String,
}

impl LogLine {
    pub fn new(source: Source, process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine {
            timestamp: Utc::now(),
            source,
            process: process.into(),
            message: message.into(),
        }
    }

    /// A line written by a dyno (`app[web.1]`).
    pub fn app(process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine::new(Source::App, process, message)
    }

    /// A line said by the platform (`heroku[router]`, `heroku[web.1]`).
    pub fn heroku(process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine::new(Source::Heroku, process, message)
    }

    /// Heroku's timestamp: RFC 3339 in UTC with microseconds and a `+00:00` offset.
    pub fn formatted_timestamp(&self) -> String {
        self.timestamp
            .to_rfc3339_opts(SecondsFormat::Micros, false)
            .replace('Z', "+00:00")
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}[{}]: {}",
            self.formatted_timestamp(),
            self.source.as_str(),
            self.process,
            self.message
        )
    }
}

/// Splits one line a dyno wrote into log messages of at most [`MAX_LINE_BYTES`] bytes, never
/// cutting a UTF-8 character in half.
pub fn split_long_line(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    while rest.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    parts.push(rest);
    parts
}

/// Which lines a reader wants: `--source app|heroku` and `--ps web|web.1|router`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub source: Option<Source>,
    /// A process type (`web`, matching `web.1`, `web.2`, ...) or an exact process (`web.1`).
    pub process: Option<String>,
}

impl LogFilter {
    pub fn matches(&self, line: &LogLine) -> bool {
        if let Some(source) = self.source {
            if line.source != source {
                return false;
            }
        }
        match &self.process {
            None => true,
            Some(wanted) => {
                line.process == *wanted
                    || (!wanted.contains('.')
                        && line
                            .process
                            .strip_prefix(wanted.as_str())
                            .is_some_and(|rest| rest.starts_with('.')))
            }
        }
    }
}
