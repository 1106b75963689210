//! `herd-raw`: the benchmark's baseline — N forked processes blocking in `accept()` on one
//! listener, serving the demo's `GET /` (`hello`, parsed with httparse), with no supervision,
//! no heartbeat, no protocol. What a prefork server costs is measured against this.
//!
//! `herd-raw ADDR WORKERS`; prints `herd: listening on http://ADDR` like `herd serve`.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let workers: u32 = args.next().and_then(|w| w.parse().ok()).unwrap_or(4);
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("herd: listening on http://{}", listener.local_addr().expect("address"));
    let _ = std::io::stdout().flush();
    let mut children = Vec::new();
    for _ in 0..workers {
        // SAFETY: single-threaded; the child only serves and never returns here.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => serve(&listener),
            nix::unistd::ForkResult::Parent { child } => children.push(child),
        }
    }
    for c in children {
        let _ = nix::sys::wait::waitpid(c, None);
    }
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
