//! What every ingest route does before its dialect's own work, in one
//! place: the request's facts and query read once, the body read (capped)
//! and inflated once, the key checked and counted against the project's
//! rate limit, the bot verdict, and the admission that validation starts
//! from. Enrichment of the request context belongs here too, so it reaches
//! every dialect at once.

use crate::http::{self, read_body};
use crate::{config, pipeline, ratelimit};
use ingest_core::auth::{KeyKind, Project};
use ingest_core::bots::{self, BotReason};
use ingest_core::payload::decode_body;
use ingest_core::validate::Admission;
use ingest_core::{IngestError, RequestContext};
use worker::{Env, Headers, Method, Request};

/// A request as every ingest route sees it before decoding.
pub struct Incoming {
    /// Arrival time, agent, address, location, request id.
    pub request: RequestContext,
    /// The query string ("" without one, or when the URL cannot be read,
    /// so an error can still be shaped from it).
    pub query: String,
    method: Method,
    headers: Headers,
}

impl Incoming {
    pub fn of(req: &Request) -> Incoming {
        Incoming {
            request: http::request_context(req),
            query: http::query(req).unwrap_or_default(),
            method: req.method(),
            headers: req.headers().clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// The body, size-capped and inflated per `Content-Encoding`. A GET has
    /// none. Routes that check credentials first call this after, so a
    /// refused client's upload is never read.
    pub async fn body(&self, req: &mut Request) -> Result<Vec<u8>, IngestError> {
        if self.method == Method::Get {
            return Ok(Vec::new());
        }
        decode_body(&read_body(req).await?, self.header("content-encoding").as_deref())
    }

    /// The project `key` opens with `kind`, once its request is counted
    /// against the project's rate limit.
    pub async fn admit(&self, env: &Env, key: Option<&str>, kind: KeyKind) -> Result<Project, IngestError> {
        let projects = config::projects(env)?;
        let project = projects.authorize(key, kind)?;
        ratelimit::per_project(env, project, kind).await?;
        Ok(project.clone())
    }

    /// The bot verdict for endpoints that servers use too (every route but
    /// our tracker's `/collect`, which takes [`bots::classify`] whole).
    pub fn shared_bot(&self) -> Option<BotReason> {
        bots::classify_shared(self.request.user_agent.as_deref(), self.request.verified_bot)
    }

    /// The cookieless daily visitor hash, for events that name nobody.
    pub async fn anonymous_id(&self, env: &Env, project: &Project) -> Option<String> {
        pipeline::anonymous_id(env, &project.id, &self.request).await
    }

    /// What validation starts from; each dialect adds its own name.
    pub fn admission<'a>(&'a self, project: &'a Project, key: KeyKind, anonymous_id: Option<&'a str>) -> Admission<'a> {
        Admission {
            project: &project.id,
            key,
            request: &self.request,
            anonymous_id,
        }
    }
}
