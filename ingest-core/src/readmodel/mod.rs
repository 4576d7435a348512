//! The read model: enriched events, visits and rollups kept by the queue
//! consumer, so reports read a bounded number of aggregate rows instead of
//! scanning raw events.

pub mod batch;
pub mod query;
pub mod report;
pub mod rollup;
pub mod sql;
pub mod visit;

use crate::zone::Zone;
use serde::Deserialize;

/// What the consumer needs to know about a project to roll its events up.
pub struct Site<'a> {
    pub project: &'a str,
    pub zone: &'a Zone,
    pub goals: &'a [Goal],
    /// Revenue in this currency (ISO 4217) is summed; other currencies
    /// stay in the raw events.
    pub currency: &'a str,
    /// Custom-event property keys rolled up for breakdowns. Others are
    /// answered from raw rows: a key with a value per event (an order id)
    /// would add a rollup row per event.
    pub properties: &'a [String],
}

impl<'a> Site<'a> {
    pub fn of(project: &'a crate::auth::Project) -> Site<'a> {
        Site {
            project: &project.id,
            zone: &project.zone,
            goals: &project.goals,
            currency: &project.currency,
            properties: &project.properties,
        }
    }

    /// A project without settings: UTC, no goals, US dollars, no
    /// properties rolled up.
    pub fn plain(project: &'a str, zone: &'a Zone) -> Site<'a> {
        Site {
            project,
            zone,
            goals: &[],
            currency: crate::auth::DEFAULT_CURRENCY,
            properties: &[],
        }
    }

    /// Whether rollups answer a breakdown by `dim` (a property only when
    /// its key is rolled up).
    pub fn rolls_up(&self, dim: &rollup::Dim) -> bool {
        match dim {
            rollup::Dim::Property { key, .. } => self.properties.iter().any(|k| k == key),
            _ => true,
        }
    }
}

/// A conversion goal: an event by name, or a page view whose path matches
/// a pattern (`*` stands for any characters but `/`, `**` for any).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "GoalConfig")]
pub struct Goal {
    pub name: String,
    pub kind: GoalKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalKind {
    Event(String),
    Page(String),
}

/// A goal as `PROJECTS` writes it: `{"event": "Signup"}` or
/// `{"page": "/checkout/*/done"}`, with an optional `name`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalConfig {
    name: Option<String>,
    event: Option<String>,
    page: Option<String>,
}

impl TryFrom<GoalConfig> for Goal {
    type Error = String;
    fn try_from(c: GoalConfig) -> Result<Goal, String> {
        match (c.event, c.page) {
            (Some(event), None) if !event.is_empty() => Ok(Goal::event(c.name.as_deref().unwrap_or(&event), &event)),
            (None, Some(page)) if page.starts_with('/') => {
                let name = c.name.unwrap_or_else(|| format!("Visit {page}"));
                Ok(Goal::page(&name, &page))
            }
            _ => Err("a goal has either a non-empty \"event\" or a \"page\" starting with /".into()),
        }
    }
}

impl Goal {
    pub fn event(name: &str, event: &str) -> Goal {
        Goal {
            name: name.to_owned(),
            kind: GoalKind::Event(event.to_owned()),
        }
    }

    pub fn page(name: &str, pattern: &str) -> Goal {
        Goal {
            name: name.to_owned(),
            kind: GoalKind::Page(pattern.to_owned()),
        }
    }

    pub fn matches(&self, event: &str, pageview: bool, path: Option<&str>) -> bool {
        match &self.kind {
            GoalKind::Event(name) => name == event,
            GoalKind::Page(pattern) => pageview && path.is_some_and(|p| glob(pattern.as_bytes(), p.as_bytes())),
        }
    }
}

/// `*` matches any run of characters except `/`; `**` any run at all.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        [b'*', rest @ ..] => {
            let segment = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=segment).any(|i| glob(rest, &text[i..]))
        }
        [c, rest @ ..] => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_patterns() {
        assert!(glob(b"/blog/*", b"/blog/post"));
        assert!(!glob(b"/blog/*", b"/blog/2024/post"));
        assert!(glob(b"/blog/**", b"/blog/2024/post"));
        assert!(glob(b"/checkout/*/done", b"/checkout/42/done"));
        assert!(!glob(b"/checkout/*/done", b"/checkout/42/done/again"));
        assert!(glob(b"/", b"/"));
        assert!(!glob(b"/", b"/a"));
    }

    #[test]
    fn goals_from_configuration() {
        let goals: Vec<Goal> =
            serde_json::from_str(r#"[{"event":"Signup"},{"page":"/thanks*","name":"Thanks"},{"page":"/a"}]"#)
                .expect("valid goals");
        assert_eq!(goals[0], Goal::event("Signup", "Signup"));
        assert_eq!(goals[1], Goal::page("Thanks", "/thanks*"));
        assert_eq!(goals[2].name, "Visit /a");
        assert!(goals[1].matches("$pageview", true, Some("/thanks-you")));
        assert!(!goals[1].matches("Signup", false, Some("/thanks")));
        assert!(serde_json::from_str::<Goal>(r#"{"event":"a","page":"/b"}"#).is_err());
        assert!(serde_json::from_str::<Goal>(r#"{"page":"no-slash"}"#).is_err());
        assert!(serde_json::from_str::<Goal>(r#"{"evnt":"typo"}"#).is_err());
    }
}
