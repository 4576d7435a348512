//! Group profiles (Mixpanel `/groups`): the same caps as user profiles
//! (`ingest_core::profile_caps`), checked before an update is queued so the
//! client hears about it in `/groups`' own answer; the consumer checks
//! again for updates that race each other.

use crate::storage;
use ingest_core::dialect::mixpanel_groups::GroupUpdate;
use ingest_core::profile_caps::apply_within_caps;
use ingest_core::FieldError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use worker::{console_error, D1Database};

/// Splits `updates` (each with its index in the request) into those that
/// keep their group within the caps and a field error for each other one.
/// Updates of one group count in order. When D1 cannot be read every update
/// passes here: the consumer holds the caps all the same.
pub async fn within_caps(db: &D1Database, updates: Vec<(usize, GroupUpdate)>) -> (Vec<GroupUpdate>, Vec<FieldError>) {
    let mut groups: HashMap<(String, String), Option<Map<String, Value>>> = HashMap::new();
    let mut kept = Vec::with_capacity(updates.len());
    let mut errors = Vec::new();
    for (index, update) in updates {
        let key = (update.group_key.clone(), update.group_id.clone());
        if !groups.contains_key(&key) {
            match storage::load_group(db, &update.project, &key.0, &key.1).await {
                Ok(found) => {
                    groups.insert(key.clone(), found);
                }
                Err(e) => {
                    console_error!("group caps not checked before queueing: {e}");
                    kept.push(update);
                    continue;
                }
            }
        }
        let current = groups.get(&key).cloned().flatten();
        match apply_within_caps(current, &update.ops) {
            Ok(next) => {
                groups.insert(key, next);
                kept.push(update);
            }
            Err(refused) => errors.push(FieldError::new(index, refused.op, refused.error.to_string())),
        }
    }
    (kept, errors)
}

/// The consumer's write: the group as the update leaves it, or, past a
/// cap, the message kept as a dead letter with the reason.
pub async fn store(db: &D1Database, update: &GroupUpdate, queue: &str, body: &str, now_ms: i64) -> worker::Result<()> {
    let (key, id) = (&update.group_key, &update.group_id);
    let current = storage::load_group(db, &update.project, key, id).await?;
    match apply_within_caps(current, &update.ops) {
        Ok(next) => storage::save_group(db, &update.project, key, id, next.as_ref(), update.time_ms).await,
        Err(refused) => {
            let reason = format!("group profile cap: {} {}", refused.op, refused.error);
            storage::write_dead_letter(db, queue, body, &reason, now_ms).await
        }
    }
}
