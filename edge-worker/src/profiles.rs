//! Profile caps checked before an update is queued, so the client hears
//! about it in its API's own error (the consumer checks again, for updates
//! that race each other).

use crate::storage;
use ingest_core::profile::ProfileUpdate;
use ingest_core::profile_caps::apply_within_caps;
use ingest_core::FieldError;
use std::collections::HashMap;
use worker::{console_error, Env};

/// Splits `updates` of one project (each with its index in the request)
/// into those that keep every profile within its caps and a field error for
/// each of the others. Updates of one user count in order, each on the
/// profile the earlier ones would leave. When D1 cannot be read every update
/// passes here: the consumer holds the caps all the same.
pub async fn within_caps(
    env: &Env,
    project: &str,
    updates: Vec<(usize, ProfileUpdate)>,
) -> (Vec<ProfileUpdate>, Vec<FieldError>) {
    if updates.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let ids: Vec<&str> = updates.iter().map(|(_, u)| u.distinct_id.as_str()).collect();
    let loaded = match crate::http::database(env) {
        Ok(db) => storage::load_profiles(&db, project, &ids).await,
        Err(_) => Err(worker::Error::RustError("no database".into())),
    };
    let mut profiles = match loaded {
        Ok(found) => found
            .into_iter()
            .map(|(id, p)| (id, Some(p)))
            .collect::<HashMap<_, _>>(),
        Err(e) => {
            console_error!("profile caps not checked before queueing: {e}");
            return (updates.into_iter().map(|(_, u)| u).collect(), Vec::new());
        }
    };
    let mut kept = Vec::with_capacity(updates.len());
    let mut errors = Vec::new();
    for (index, update) in updates {
        let current = profiles.get(&update.distinct_id).cloned().flatten();
        match apply_within_caps(current, &update.ops) {
            Ok(next) => {
                profiles.insert(update.distinct_id.clone(), next);
                kept.push(update);
            }
            Err(refused) => errors.push(FieldError::new(index, refused.op, refused.error.to_string())),
        }
    }
    (kept, errors)
}

/// [`within_caps`] for a request that carries one update: past a cap, the
/// whole request is refused (an event that came with it is not stored
/// either), as a field error in its API's shape.
pub async fn one_within_caps(
    env: &Env,
    project: &str,
    update: ProfileUpdate,
) -> Result<ProfileUpdate, ingest_core::IngestError> {
    let (mut kept, errors) = within_caps(env, project, vec![(0, update)]).await;
    match kept.pop() {
        Some(update) if errors.is_empty() => Ok(update),
        _ => Err(ingest_core::IngestError::Invalid(errors)),
    }
}
