#!/usr/bin/env python3
"""A herd worker in Python, standard library only: the reference for writing one in any language.

Run under herd, which forks each worker and executes this program in it:

    herd serve --workers 4 -- python3 examples/python/herd_worker.py [module:app]

It speaks herd's wire protocol (docs/protocol.md) on the descriptor HERD_FD names: ALIVE
heartbeats at least every HERD_TIMEOUT/2 seconds outside a request, ACCEPT when idle (signaled and
auto modes), ACCEPTED/EMPTY to answer each ACCEPT:<socket> it is sent, BYE:<reason> before it
exits on purpose. It serves a WSGI application (the demo below, or module:app) on the listeners
herd passes the systemd way (LISTEN_FDS descriptors from 3), one request per connection, like
herd's own sync workers, so herd's --timeout is a request timeout.

Signals: TERM finishes the request under way, then BYE:stop and exit 0; QUIT and INT exit at once.
If the arbiter goes away (its end of the channel closes, or this process is re-parented), the
worker says BYE:parent and exits.
"""

import errno
import importlib
import os
import selectors
import signal
import socket
import sys
import time
import urllib.parse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

#: accept() errors that mean "nothing to take": another worker took the connection, or the
#: client left before it was accepted.
NOTHING = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED, errno.EPROTO, errno.EINTR)


def demo(environ, start_response):
    """The demo application: / answers hello, /pid this process, /sleep?ms=N sleeps first."""
    path = environ.get("PATH_INFO", "/")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/sleep":
        time.sleep(int(query.get("ms", ["0"])[0]) / 1000)
        body = b"slept\n"
    elif path == "/pid":
        body = f"{os.getpid()}\n".encode()
    elif path == "/":
        body = b"hello\n"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Quiet(WSGIRequestHandler):
    """wsgiref's handler without its access log on stderr."""

    def log_message(self, *args):
        pass


class Worker:
    def __init__(self, app):
        env = os.environ
        if int(env.get("LISTEN_PID", "0")) != os.getpid():
            sys.exit("herd_worker: LISTEN_PID is not this process: run me under herd serve -- ...")
        self.arbiter = os.getppid()
        self.chan = socket.socket(fileno=int(env["HERD_FD"]))
        self.chan.setblocking(True)
        self.listeners = [socket.socket(fileno=3 + i) for i in range(int(env["LISTEN_FDS"]))]
        for listener in self.listeners:
            listener.setblocking(False)
        self.mode = env["HERD_ACCEPT_MODE"]
        self.pace = float(env["HERD_TIMEOUT"]) / 2
        self.budget = int(env.get("HERD_MAX_REQUESTS", "0"))
        self.served = 0
        self.last_alive = 0.0
        self.stopping = False
        self.inbox = b""
        # One WSGI "server" object for the handler to ask for the application and environment;
        # it never binds or listens itself.
        self.wsgi = WSGIServer(("", 0), Quiet, bind_and_activate=False)
        name = self.listeners[0].getsockname() if self.listeners else ("", 0)
        if isinstance(name, tuple):
            self.wsgi.server_name, self.wsgi.server_port = socket.getfqdn(name[0]), name[1]
        else:
            self.wsgi.server_name, self.wsgi.server_port = "localhost", 0
        self.wsgi.setup_environ()
        self.wsgi.set_app(app)
        # Signals wake the selector through a socket pair (their handlers only set flags).
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGQUIT, self.on_quit)
        signal.signal(signal.SIGINT, self.on_quit)

    # ---- signals ----

    def on_term(self, *_):
        self.stopping = True

    def on_quit(self, *_):
        os._exit(0)

    # ---- the channel ----

    def send(self, frame):
        try:
            self.chan.sendall(frame.encode() + b"\n")
        except OSError:
            self.leave("parent")

    def alive(self):
        self.send(f"ALIVE:{int(time.monotonic() * 1000)}")
        self.last_alive = time.monotonic()

    def leave(self, reason):
        try:
            self.chan.sendall(f"BYE:{reason}\n".encode())
        except OSError:
            pass
        sys.stdout.flush()
        os._exit(0)

    def frames(self):
        """The complete frames the arbiter sent; an empty read means it is gone."""
        data = self.chan.recv(256)
        if not data:
            self.leave("parent")
        self.inbox += data
        *frames, self.inbox = self.inbox.split(b"\n")
        return [f.decode("ascii", "replace") for f in frames]

    # ---- the cycle ----

    def loop_point(self):
        """TERM and a changed parent are acted on between requests, never during one."""
        if self.stopping:
            self.leave("stop")
        if os.getppid() != self.arbiter:
            self.leave("parent")

    def try_accept(self, which):
        """One non-blocking accept, on listener `which` or on any (None): the connection or None."""
        for i in [which] if which is not None else range(len(self.listeners)):
            try:
                conn, addr = self.listeners[i].accept()
                return conn, addr
            except OSError as e:
                if e.errno not in NOTHING:
                    raise
        return None

    def serve(self, conn, addr):
        conn.setblocking(True)
        conn.settimeout(10)
        try:
            self.wsgi.process_request(conn, addr)
        except Exception as e:  # the application's failure ends its connection, not the worker
            print(f"herd_worker: request failed: {e!r}", file=sys.stderr)
            self.wsgi.shutdown_request(conn)
        self.served += 1
        if self.budget and self.served >= self.budget:
            self.leave("recycle")
        self.loop_point()
        if time.monotonic() - self.last_alive >= self.pace:
            self.alive()

    def ask_for_work(self):
        """After boot and after each request: shared and auto try to accept at once."""
        if self.mode in ("shared", "auto"):
            got = self.try_accept(None)
            if got:
                return got
        if self.mode != "shared":
            self.send("ACCEPT")
        return None

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.chan, selectors.EVENT_READ, "chan")
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        if self.mode == "shared":
            for listener in self.listeners:
                sel.register(listener, selectors.EVENT_READ, "listener")
        self.alive()
        got = self.ask_for_work()
        while True:
            while got:
                self.serve(*got)
                got = self.ask_for_work()
            wait = max(0.0, self.last_alive + self.pace - time.monotonic())
            events = sel.select(wait)
            for key, _ in events:
                if key.data == "wake":
                    try:
                        self.wake_r.recv(64)
                    except BlockingIOError:
                        pass
            self.loop_point()
            for key, _ in events:
                if key.data == "chan":
                    for frame in self.frames():
                        verb, _, field = frame.partition(":")
                        if verb != "ACCEPT" or not field.isdigit():
                            sys.exit(f"herd_worker: unexpected frame {frame!r} from the arbiter")
                        socket_id = int(field)
                        got = self.try_accept(socket_id)
                        self.send(f"ACCEPTED:{socket_id}" if got else f"EMPTY:{socket_id}")
                        if got:
                            self.serve(*got)
                            got = self.ask_for_work()
                elif key.data == "listener" and not got:
                    got = self.try_accept(None)
            if time.monotonic() - self.last_alive >= self.pace:
                self.alive()


def load(spec):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "application")


if __name__ == "__main__":
    Worker(load(sys.argv[1]) if len(sys.argv) > 1 else demo).run()
