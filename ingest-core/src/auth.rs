//! Projects and their keys. A public token only opens the track endpoints;
//! the secret key opens import, bulk, export, stats and deletion. Keys are
//! compared in constant time and never echoed.

use crate::error::IngestError;
use serde::Deserialize;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Project {
    #[serde(skip)]
    pub id: String,
    /// Public token: safe in web pages and mobile apps.
    pub token: String,
    /// Secret key: server side only.
    pub secret: String,
    /// Hosts that Mixpanel's `redirect=` may send a browser to.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
}

/// Which kind of key an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Public,
    Secret,
}

#[derive(Debug, Clone, Default)]
pub struct Projects {
    projects: Vec<Project>,
}

impl Projects {
    /// Reads the `PROJECTS` configuration: a JSON object from project id to
    /// `{"token", "secret", "redirect_hosts"}`.
    pub fn from_json(text: &str) -> Result<Projects, String> {
        let map: BTreeMap<String, Project> =
            serde_json::from_str(text).map_err(|e| format!("PROJECTS is not valid: {e}"))?;
        let mut projects = Vec::with_capacity(map.len());
        for (id, mut project) in map {
            if project.token.is_empty() || project.secret.is_empty() || project.token == project.secret {
                return Err(format!("project {id}: token and secret must be set and differ"));
            }
            project.id = id;
            projects.push(project);
        }
        Ok(Projects { projects })
    }

    pub fn by_id(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// Finds the project a key belongs to and checks the key's kind. Every
    /// project's keys are compared, each in constant time, so timing tells
    /// nothing about how close a guess was or which project matched.
    pub fn authorize(&self, key: Option<&str>, required: KeyKind) -> Result<&Project, IngestError> {
        let key = key.filter(|k| !k.is_empty()).ok_or(IngestError::Unauthorized)?;
        let mut found: Option<(&Project, KeyKind)> = None;
        for project in &self.projects {
            if bool::from(project.token.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project, KeyKind::Public));
            }
            if bool::from(project.secret.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project, KeyKind::Secret));
            }
        }
        match found {
            None => Err(IngestError::Unauthorized),
            Some((project, kind)) if kind == required => Ok(project),
            Some(_) => Err(IngestError::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projects() -> Projects {
        Projects::from_json(
            r#"{"demo":{"token":"demo-token","secret":"demo-secret","redirect_hosts":["example.com"]},
                "other":{"token":"t2","secret":"s2"}}"#,
        )
        .expect("valid config")
    }

    #[test]
    fn keys_open_only_their_endpoints() {
        let p = projects();
        assert_eq!(
            p.authorize(Some("demo-token"), KeyKind::Public).map(|p| p.id.as_str()),
            Ok("demo")
        );
        assert_eq!(
            p.authorize(Some("s2"), KeyKind::Secret).map(|p| p.id.as_str()),
            Ok("other")
        );
        assert_eq!(
            p.authorize(Some("demo-token"), KeyKind::Secret),
            Err(IngestError::Forbidden)
        );
        assert_eq!(
            p.authorize(Some("demo-secret"), KeyKind::Public),
            Err(IngestError::Forbidden)
        );
        assert_eq!(
            p.authorize(Some("demo-secre"), KeyKind::Secret),
            Err(IngestError::Unauthorized)
        );
        assert_eq!(p.authorize(Some(""), KeyKind::Public), Err(IngestError::Unauthorized));
        assert_eq!(p.authorize(None, KeyKind::Public), Err(IngestError::Unauthorized));
        assert_eq!(p.by_id("demo").map(|p| p.redirect_hosts.len()), Some(1));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(Projects::from_json("[]").is_err());
        assert!(Projects::from_json(r#"{"x":{"token":"same","secret":"same"}}"#).is_err());
        assert!(Projects::from_json(r#"{"x":{"token":"","secret":"s"}}"#).is_err());
    }
}
