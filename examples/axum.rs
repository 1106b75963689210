//! An axum application on herd's async workers, as it is — no glue:
//! `cargo run --release --example axum -- 127.0.0.1:8000 4`, then
//! `curl http://127.0.0.1:8000/hello/ada` or
//! `curl -d '{"numbers":[1,2,3]}' -H 'content-type: application/json' http://127.0.0.1:8000/sum`.
//!
//! The `Router` is a tower `Service`; [`herd::Server::run_service`] serves it on every worker
//! (a tokio current-thread runtime each, made after fork). Each request carries its
//! [`herd::HttpContext`] as an extension: the worker, the client's address, the registry.

use axum::extract::{Extension, Path};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Hello {
    hello: String,
    worker: u64,
    pid: u32,
}

#[derive(Deserialize)]
struct Numbers {
    numbers: Vec<i64>,
}

#[derive(Serialize)]
struct Sum {
    sum: i64,
    worker: u64,
}

async fn hello(Path(name): Path<String>, Extension(ctx): Extension<herd::HttpContext>) -> Json<Hello> {
    Json(Hello { hello: name, worker: ctx.worker_id(), pid: std::process::id() })
}

async fn sum(Extension(ctx): Extension<herd::HttpContext>, Json(n): Json<Numbers>) -> Json<Sum> {
    Json(Sum { sum: n.numbers.iter().sum(), worker: ctx.worker_id() })
}

/// A bug in a handler: the client gets a 500, the worker serves on.
async fn bug() -> &'static str {
    panic!("example: GET /bug")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let workers = args.next().map(|w| w.parse()).transpose()?.unwrap_or(4);
    let app =
        Router::new().route("/hello/{name}", get(hello)).route("/sum", post(sum)).route("/bug", get(bug));
    let server = herd::Server::builder()
        .bind(bind.parse()?)
        .workers(workers)
        .on_ready(|listeners| {
            for l in listeners {
                println!("herd: listening on {}", l.url());
            }
        })
        .build()?;
    // Up to 1,000 connections per worker.
    std::process::exit(server.run_service(1000, app)?)
}
