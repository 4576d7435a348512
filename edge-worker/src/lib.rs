//! edgetrack's Cloudflare Worker: thin glue between the `ingest-core` crate
//! and Cloudflare's bindings. `fetch` decodes, validates, deduplicates and
//! queues; `queue` stores.

mod bindings;
mod config;
mod consumer;
mod crm_store;
mod erasure;
mod groups;
mod http;
mod identities;
mod pipeline;
mod profiles;
mod ratelimit;
mod readmodel;
mod routes;
mod sink;
mod stats;
mod storage;

use worker::{
    console_error, event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::dispatch(req, env).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::handle(batch, env).await
}

/// Every minute: re-queue event messages the outbox holds past their
/// grace, offer the HTTP sink the runs it refused, make quiet visits
/// final, and delete raw events past each project's retention.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if config::outbox_enabled(&env) {
        if let Err(e) = consumer::sweep_outbox(&env).await {
            console_error!("outbox sweep failed: {e}");
        }
    }
    if let Err(e) = sink::retry(&env).await {
        console_error!("HTTP sink retry failed: {e}");
    }
    if let Err(e) = consumer::queue_finalization(&env).await {
        console_error!("visit finalization not queued: {e}");
    }
    if let Err(e) = consumer::apply_retention(&env).await {
        console_error!("retention failed: {e}");
    }
}
