//! Pack settings from `pack.toml`: decision-log sampling and per-chain
//! delegation limits (which can only narrow the server's configured ones).
//!
//! ```toml
//! [delegation]
//! max_depth = 3                  # chains at most 3 hops below their root
//! max_lifetime_seconds = 900     # no delegation lives longer than 15 minutes
//! max_fan_out = 10               # at most 10 direct delegations per delegation
//!
//! [decision_log]
//! default = "log"                # "log" | "skip" | { sample = 0.5 }
//! [decision_log.actions]
//! read = { sample = 0.01 }       # log about 1 % of `read` decisions
//! healthcheck = "skip"
//! ```
//!
//! Without `pack.toml` every decision is logged.

use crate::diagnostic::Diagnostic;
use crate::pack::SETTINGS_FILE;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// Settings of one pack.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackSettings {
    /// Which decisions go to the audit log.
    pub decision_log: DecisionLog,
    /// Delegation limits; `None` leaves the server's configured limit.
    pub delegation: DelegationLimits,
}

/// Per-chain limits set by a pack. The server takes the tighter of these
/// and its own configuration, so a pack can narrow but never widen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationLimits {
    /// Deepest a chain may go below its root.
    pub max_depth: Option<u32>,
    /// Longest lifetime of a delegation, in seconds.
    pub max_lifetime_seconds: Option<u32>,
    /// Most direct delegations below one delegation.
    pub max_fan_out: Option<u32>,
}

/// Decision-log settings: a default rule and per-action rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionLog {
    /// The rule for actions not listed in `actions`.
    pub default: LogRule,
    /// Rules by action name.
    pub actions: BTreeMap<String, LogRule>,
}

/// Whether decisions of an action are logged.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LogRule {
    /// Every decision is logged.
    #[default]
    Log,
    /// No decision is logged.
    Skip,
    /// A fraction in `[0, 1]` of decisions is logged.
    Sample(f64),
}

impl PackSettings {
    /// Whether a decision for `action` should be written to the audit log;
    /// `draw` in `[0, 1)` comes from the caller's random number generator.
    pub fn should_log(&self, action: &str, draw: f64) -> bool {
        match self.rule(action) {
            LogRule::Log => true,
            LogRule::Skip => false,
            LogRule::Sample(rate) => draw < rate,
        }
    }

    /// The decision-log rule for `action` (its own, or the default).
    pub fn rule(&self, action: &str) -> LogRule {
        *self
            .decision_log
            .actions
            .get(action)
            .unwrap_or(&self.decision_log.default)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    #[serde(default)]
    decision_log: RawDecisionLog,
    #[serde(default)]
    delegation: DelegationLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDecisionLog {
    #[serde(default)]
    default: LogRule,
    #[serde(default)]
    actions: BTreeMap<String, LogRule>,
}

impl<'de> Deserialize<'de> for LogRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = LogRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"log\", \"skip\" or { sample = <number between 0 and 1> }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LogRule, E> {
                match v {
                    "log" => Ok(LogRule::Log),
                    "skip" => Ok(LogRule::Skip),
                    other => Err(E::custom(format!(
                        "unknown rule \"{}\": expected \"log\", \"skip\" or {{ sample = 0.1 }}",
                        crate::error::shorten(other)
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogRule, A::Error> {
                let mut rate = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "sample" {
                        return Err(de::Error::custom(format!(
                            "unknown key \"{}\": expected \"sample\"",
                            crate::error::shorten(&key)
                        )));
                    }
                    rate = Some(map.next_value::<f64>()?);
                }
                match rate {
                    Some(r) if (0.0..=1.0).contains(&r) => Ok(LogRule::Sample(r)),
                    Some(r) => Err(de::Error::custom(format!(
                        "sample rate {r} is not between 0 and 1"
                    ))),
                    None => Err(de::Error::custom("missing \"sample\"")),
                }
            }
        }
        d.deserialize_any(RuleVisitor)
    }
}

/// Parses `pack.toml`; `actions` are the schema's action names, which the
/// per-action rules must name.
pub(crate) fn parse(text: &str, actions: &[String]) -> Result<PackSettings, Vec<Diagnostic>> {
    let raw: RawPack = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        vec![Diagnostic::at(
            SETTINGS_FILE,
            text,
            offset,
            e.message().trim().to_owned(),
        )]
    })?;
    let unknown: Vec<Diagnostic> = raw
        .decision_log
        .actions
        .keys()
        .filter(|name| !actions.contains(name))
        .map(|name| {
            let offset = text
                .lines()
                .scan(0usize, |pos, line| {
                    let start = *pos;
                    *pos += line.len() + 1;
                    Some((start, line))
                })
                .find(|(_, line)| {
                    let key = line.trim_start();
                    key.starts_with(name.as_str()) || key.starts_with(&format!("\"{name}\""))
                })
                .map_or(0, |(start, line)| {
                    start + (line.len() - line.trim_start().len())
                });
            Diagnostic::at(
                SETTINGS_FILE,
                text,
                offset,
                format!(
                    "unknown action \"{}\" in decision_log.actions",
                    crate::error::shorten(name)
                ),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(PackSettings {
        decision_log: DecisionLog {
            default: raw.decision_log.default,
            actions: raw.decision_log.actions,
        },
        delegation: raw.delegation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions() -> Vec<String> {
        vec!["read".into(), "write".into()]
    }

    #[test]
    fn every_decision_is_logged_by_default() {
        let settings = PackSettings::default();
        assert!(settings.should_log("read", 0.999));
        let parsed = parse("", &actions()).unwrap();
        assert_eq!(parsed, settings);
    }

    #[test]
    fn rules_skip_and_sample_per_action() {
        let text = "[decision_log]\ndefault = \"skip\"\n[decision_log.actions]\nread = { sample = 0.25 }\nwrite = \"log\"\n";
        let s = parse(text, &actions()).unwrap();
        assert!(s.should_log("read", 0.1));
        assert!(!s.should_log("read", 0.3));
        assert!(s.should_log("write", 0.99));
        assert!(!s.should_log("other", 0.0));
    }

    #[test]
    fn delegation_limits_parse_and_refuse_unknown_keys() {
        let s = parse("[delegation]\nmax_depth = 2\nmax_fan_out = 4\n", &actions()).unwrap();
        assert_eq!(s.delegation.max_depth, Some(2));
        assert_eq!(s.delegation.max_fan_out, Some(4));
        assert_eq!(s.delegation.max_lifetime_seconds, None);
        let d = parse("[delegation]\nmax_dept = 2\n", &actions()).unwrap_err();
        assert!(d[0].message.contains("max_dept"), "{}", d[0].message);
        assert!(parse("[delegation]\nmax_depth = -1\n", &actions()).is_err());
    }

    #[test]
    fn bad_settings_are_located() {
        let d = parse("[decision_log]\ndefault = \"sometimes\"\n", &actions()).unwrap_err();
        assert_eq!((d[0].file.as_str(), d[0].line), (SETTINGS_FILE, 2));
        assert!(
            d[0].message.contains("unknown rule \"sometimes\""),
            "{}",
            d[0].message
        );

        let d = parse(
            "[decision_log.actions]\nread = { sample = 2.0 }\n",
            &actions(),
        )
        .unwrap_err();
        assert!(
            d[0].message.contains("not between 0 and 1"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].line, 2);

        let d = parse("[decision_log]\nsampel = 1\n", &actions()).unwrap_err();
        assert!(d[0].message.contains("sampel"), "{}", d[0].message);

        let d = parse(
            "[decision_log.actions]\n\n  delete = \"skip\"\n",
            &actions(),
        )
        .unwrap_err();
        assert_eq!((d[0].line, d[0].column), (3, 3));
        assert_eq!(
            d[0].message,
            "unknown action \"delete\" in decision_log.actions"
        );
    }
}
