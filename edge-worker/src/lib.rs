//! edgetrack's Cloudflare Worker: thin glue between the `ingest-core` crate
//! and Cloudflare's bindings. `fetch` decodes, validates, deduplicates and
//! queues; `queue` stores.

mod bindings;
mod config;
mod consumer;
mod http;
mod pipeline;
mod ratelimit;
mod routes;
mod stats;
mod storage;

use worker::{event, Context, Env, MessageBatch, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    routes::dispatch(req, env).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::handle(batch, env).await
}
