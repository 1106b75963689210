//! A minimal server on herd: `cargo run --release --example hello -- 127.0.0.1:8000 4`, then
//! `curl http://127.0.0.1:8000/`. Each answer names the worker that served it; `kill -TTIN` and
//! `kill -TTOU` on the printed arbiter pid add and remove workers, `kill -TERM` stops gracefully.

use std::io::{Read, Write};

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
    let code = server.run(|ctx, mut conn| {
        // Read the request head (one read is enough for a small GET), then answer.
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf);
        let body = format!("hello from worker {} (pid {})\n", ctx.worker_id(), std::process::id());
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })?;
    std::process::exit(code)
}
