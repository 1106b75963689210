//! `herd-hyper`: the keep-alive benchmark's baseline — one process, a multi-threaded tokio
//! runtime with as many threads as herd has async workers, hyper serving HTTP/1.1 with keep-alive
//! and the async demo's `GET /` (`hello`). No fork, no supervision, no registry check: what herd's
//! async workers cost is measured against this.
//!
//! `herd-hyper [ADDR] [THREADS]` (`--help`); prints `herd: listening on http://ADDR` like `herd serve`.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "herd-hyper",
    about = "The keep-alive benchmark's baseline: hyper on a multi-threaded tokio runtime"
)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the real address is printed).
    #[arg(default_value = "127.0.0.1:0")]
    addr: String,
    /// Runtime worker threads.
    #[arg(default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
}

async fn hello(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"hello\n")));
    if req.uri().path() != "/" {
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
    }
    Ok(r)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herd-hyper: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("herd-hyper: cannot listen on {}: {e}", args.addr);
                return ExitCode::from(1);
            }
        };
        match listener.local_addr() {
            Ok(a) => println!("herd: listening on http://{a}"),
            Err(e) => {
                eprintln!("herd-hyper: {e}");
                return ExitCode::from(1);
            }
        }
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(io, hyper::service::service_fn(hello))
                    .await;
            });
        }
    })
}
