//! The `Range` request header of list endpoints (`Range: version ..; order=desc, max=15`),
//! also used for the `Next-Range` response header.

use std::fmt;

use crate::{DEFAULT_RANGE_MAX, MAX_RANGE_MAX};

/// A parsed list range: sort `field`, optional bounds, order and page size.
///
/// Grammar: `<field> [ ']' ]<start>..<end> [; key=value[, key=value]...] [;]`, where
/// bounds may be empty, `]` makes the start exclusive (used by `Next-Range`), and keys are
/// `max` (1..=1000, default 200, larger values are clamped) and `order` (`asc`/`desc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRange {
    pub field: String,
    pub start: Option<String>,
    pub start_exclusive: bool,
    pub end: Option<String>,
    pub order: RangeOrder,
    pub max: usize,
}

/// Sort direction of a list range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangeOrder {
    #[default]
    Asc,
    Desc,
}

/// A `Range` header that does not follow the grammar; answer 416
/// `requested_range_not_satisfiable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Range header {header:?}: {reason}; expected something like `version ..; order=desc, max=10`")]
pub struct RangeParseError {
    pub header: String,
    pub reason: String,
}

impl ListRange {
    /// A range over `field` with no bounds, ascending, with the default page size.
    pub fn all(field: &str) -> ListRange {
        ListRange {
            field: field.to_owned(),
            start: None,
            start_exclusive: false,
            end: None,
            order: RangeOrder::Asc,
            max: DEFAULT_RANGE_MAX,
        }
    }

    /// Parses a `Range` header. An empty (or all-whitespace) header is `Ok(None)`: the
    /// heroku CLI sends `Range: ''` on some requests, meaning "no range".
    pub fn parse(header: &str) -> Result<Option<ListRange>, RangeParseError> {
        let error = |reason: &str| RangeParseError {
            header: header.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = header.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let (head, params) = match trimmed.split_once(';') {
            Some((head, params)) => (head.trim(), params),
            None => (trimmed, ""),
        };
        let (field, bounds) = match head.split_once(char::is_whitespace) {
            Some((field, bounds)) => (field, bounds.trim()),
            None => (head, ""),
        };
        if field.is_empty()
            || !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(error(
                "the sort field must be a name such as `id` or `version`",
            ));
        }
        let mut range = ListRange::all(field);
        if !bounds.is_empty() {
            let (start, end) = bounds
                .split_once("..")
                .ok_or_else(|| error("the bounds must contain `..`"))?;
            let (start_exclusive, start) = match start.strip_prefix(']') {
                Some(rest) => (true, rest),
                None => (false, start),
            };
            range.start_exclusive = start_exclusive;
            range.start = Some(start.trim().to_owned()).filter(|s| !s.is_empty());
            range.end = Some(end.trim().to_owned()).filter(|s| !s.is_empty());
        }
        for param in params
            .split([',', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = param
                .split_once('=')
                .ok_or_else(|| error("parameters must look like `key=value`"))?;
            match (key.trim(), value.trim()) {
                ("max", value) => {
                    let max: usize = value
                        .parse()
                        .map_err(|_| error("`max` must be a positive whole number"))?;
                    if max == 0 {
                        return Err(error("`max` must be at least 1"));
                    }
                    range.max = max.min(MAX_RANGE_MAX);
                }
                ("order", "asc") => range.order = RangeOrder::Asc,
                ("order", "desc") => range.order = RangeOrder::Desc,
                ("order", _) => return Err(error("`order` must be `asc` or `desc`")),
                _ => return Err(error("the only parameters are `max` and `order`")),
            }
        }
        Ok(Some(range))
    }
}

impl fmt::Display for ListRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}..{}; max={}",
            self.field,
            if self.start_exclusive { "]" } else { "" },
            self.start.as_deref().unwrap_or(""),
            self.end.as_deref().unwrap_or(""),
            self.max
        )?;
        if self.order == RangeOrder::Desc {
            f.write_str(", order=desc")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
