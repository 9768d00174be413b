//! How a setting's text becomes its value: the `Parse` kinds the declarations name,
//! and the reader that takes each value from the layers (or its default).

use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Layers, SETTINGS};

type ParseFn<T> = Box<dyn Fn(&str) -> Option<T>>;

/// How a setting's text becomes its value, and what a refused text should have been
/// (the message reads "expected {expected}, got `text`").
pub(super) struct Parse<T> {
    parse: ParseFn<T>,
    expected: String,
}

impl<T> Parse<T> {
    fn new(expected: impl Into<String>, parse: impl Fn(&str) -> Option<T> + 'static) -> Self {
        Self {
            parse: Box::new(parse),
            expected: expected.into(),
        }
    }

    /// Names the unit of a number in the message.
    pub(super) fn unit(mut self, unit: &str) -> Self {
        let _ = write!(self.expected, " ({unit})");
        self
    }
}

/// Text as written, not trimmed (a URL or a name); refused only by its check.
pub(super) fn text() -> Parse<String> {
    Parse::new("", |s| Some(s.to_string()))
}

/// Text as written, in lower case.
pub(super) fn lowercase() -> Parse<String> {
    Parse::new("", |s| Some(s.to_ascii_lowercase()))
}

pub(super) fn path() -> Parse<PathBuf> {
    Parse::new("", |s| Some(PathBuf::from(s)))
}

/// A word read by `parse`, trimmed.
pub(super) fn keyword<T: 'static>(expected: &str, parse: fn(&str) -> Option<T>) -> Parse<T> {
    Parse::new(expected, move |s| parse(s.trim()))
}

pub(super) fn duration() -> Parse<Duration> {
    keyword(
        "a duration in seconds or with a unit (90, 15m, 24h, 30d)",
        parse_duration,
    )
}

/// [`duration`], and milliseconds (`250ms`): for the settings that tests (and some
/// deployments) want below a second.
pub(super) fn fine_duration() -> Parse<Duration> {
    keyword(
        "a duration in seconds or with a unit (250ms, 90, 15m, 24h)",
        parse_fine_duration,
    )
}

pub(super) fn socket_addr(example: &str) -> Parse<SocketAddr> {
    Parse::new(format!("a socket address like {example}"), |s| {
        s.trim().parse().ok()
    })
}

pub(super) fn between<T>(min: T, max: T) -> Parse<T>
where
    T: FromStr + PartialOrd + Display + 'static,
{
    Parse::new(format!("an integer between {min} and {max}"), move |s| {
        s.trim().parse().ok().filter(|v| *v >= min && *v <= max)
    })
}

pub(super) fn at_least<T>(min: T) -> Parse<T>
where
    T: FromStr + PartialOrd + Display + 'static,
{
    Parse::new(format!("an integer of at least {min}"), move |s| {
        s.trim().parse().ok().filter(|v| *v >= min)
    })
}

pub(super) fn ip_list() -> Parse<Vec<std::net::IpAddr>> {
    keyword("a comma-separated list of IP addresses", |s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect()
    })
}

/// Applies a setting's check; a function, so the closure's argument type is known.
pub(super) fn holds<T>(value: &T, check: impl Fn(&T) -> bool) -> bool {
    check(value)
}

pub(super) struct Parser<'a> {
    pub(super) layers: &'a Layers,
}

impl Parser<'_> {
    /// Where a setting's value came from, for the message: its environment variable
    /// when it was left at its default.
    fn source(&self, key: &str) -> String {
        match self.layers.get(key) {
            Some((_, source)) => source.clone(),
            None => SETTINGS
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.env.to_string())
                .unwrap_or_else(|| key.to_string()),
        }
    }

    pub(super) fn invalid(&self, key: &str, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            setting: self.source(key),
            problem: problem.to_string(),
        }
    }

    fn read<T>(&self, key: &str, raw: &str, parse: &Parse<T>) -> Result<T, ConfigError> {
        (parse.parse)(raw)
            .ok_or_else(|| self.invalid(key, &format!("expected {}, got `{raw}`", parse.expected)))
    }

    pub(super) fn required<T>(
        &self,
        key: &str,
        default: String,
        parse: &Parse<T>,
    ) -> Result<T, ConfigError> {
        match self.layers.get(key) {
            Some((raw, _)) => self.read(key, raw, parse),
            None => self.read(key, &default, parse),
        }
    }

    pub(super) fn optional<T>(
        &self,
        key: &str,
        parse: &Parse<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.layers
            .get(key)
            .map(|(raw, _)| self.read(key, raw, parse))
            .transpose()
    }
}

/// `300`, `300s`, `15m`, `24h`, `30d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor).map(Duration::from_secs)
}

/// [`parse_duration`], or `250ms`.
pub(super) fn parse_fine_duration(s: &str) -> Option<Duration> {
    match s.strip_suffix("ms") {
        Some(ms) if !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()) => {
            ms.parse().ok().map(Duration::from_millis)
        }
        Some(_) => None,
        None => parse_duration(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("250ms"), None, "whole seconds only");
        assert_eq!(
            parse_fine_duration("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_fine_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_fine_duration("ms"), None);
        assert_eq!(parse_fine_duration("1.5ms"), None);
    }
}
