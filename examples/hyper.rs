//! A hyper application on herd's async workers: `cargo run --release --example hyper -- 127.0.0.1:8000 4`,
//! then `curl http://127.0.0.1:8000/`. Each worker runs a tokio current-thread runtime (made after
//! fork) serving HTTP/1.1 with keep-alive; the arbiter supervises them as it does sync workers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let workers = args.next().map(|w| w.parse()).transpose()?.unwrap_or(4);
    let server = herd::Server::builder()
        .bind(bind.parse()?)
        .workers(workers)
        .on_ready(|listeners| {
            for l in listeners {
                println!("arbiter {} listening on {}", std::process::id(), l.url());
            }
        })
        .build()?;
    // Up to 1,000 connections per worker; the handler is any async fn of a request.
    let code =
        server.run_async(1000, |req: Request<hyper::body::Incoming>, ctx: herd::HttpContext| async move {
            let body =
                format!("hello from worker {} ({} {})\n", ctx.worker_id(), req.method(), req.uri().path());
            Response::new(Full::new(Bytes::from(body)))
        })?;
    std::process::exit(code)
}
