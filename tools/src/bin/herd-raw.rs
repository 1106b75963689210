//! `herd-raw`: the benchmark's baseline — N forked processes blocking in `accept()` on one
//! listener, serving the demo's `GET /` (`hello`, parsed with httparse), with no supervision,
//! no heartbeat, no protocol. What a prefork server costs is measured against this.
//!
//! `herd-raw [ADDR] [WORKERS]` (`--help`); prints `herd: listening on http://ADDR` like `herd serve`.

use clap::Parser;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "herd-raw",
    about = "The benchmarks' baseline: N forked processes blocking in accept(), no supervision"
)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the real address is printed).
    #[arg(default_value = "127.0.0.1:0")]
    addr: String,
    /// Worker processes.
    #[arg(default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match TcpListener::bind(&args.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("herd-raw: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("herd: listening on http://{a}"),
        Err(e) => {
            eprintln!("herd-raw: {e}");
            return ExitCode::from(1);
        }
    }
    let _ = std::io::stdout().flush();
    let workers = args.workers;
    let mut children = Vec::new();
    for _ in 0..workers {
        // SAFETY: single-threaded; the child only serves and never returns here.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => serve(&listener),
            Ok(nix::unistd::ForkResult::Parent { child }) => children.push(child),
            Err(e) => {
                eprintln!("herd-raw: fork: {e}");
                break;
            }
        }
    }
    for c in children {
        let _ = nix::sys::wait::waitpid(c, None);
    }
    ExitCode::SUCCESS
}

fn serve(listener: &TcpListener) -> ! {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok((mut s, _)) = listener.accept() else { continue };
        let mut len = 0;
        loop {
            let n = match s.read(&mut buf[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            len += n;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(_)) => {
                    let body = "hello\n";
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    break;
                }
                Ok(httparse::Status::Partial) if len < buf.len() => {}
                _ => break,
            }
        }
    }
}
