//! A counting TCP proxy between a tool and the server: the most tool-neutral way to count what
//! each tool sends. It parses the PostgreSQL wire protocol only far enough to find message
//! boundaries, counts frontend messages by type ('Q' simple query, 'P' parse, 'B' bind,
//! 'E' execute, 'S' sync, ...), backend 'Z' (ReadyForQuery: one per round trip the client
//! waits for), and bytes each way.
//!
//! Counters are bumped before a message is forwarded, so once a client call has returned
//! (it saw the server's answer), everything it sent is already counted: snapshots taken
//! between client calls are exact.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

struct Counters {
    frontend: [AtomicU64; 256],
    ready_for_query: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    connections: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            frontend: std::array::from_fn(|_| AtomicU64::new(0)),
            ready_for_query: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        }
    }
}

/// What went over the wire between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub simple_queries: u64,
    pub parse: u64,
    pub bind: u64,
    pub execute: u64,
    pub sync: u64,
    /// Every frontend message after the startup packet (including the password, Terminate).
    pub messages: u64,
    /// ReadyForQuery messages from the server: one per round trip the client waited for.
    pub round_trips: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub connections: u64,
}

impl Traffic {
    pub fn minus(self, before: Traffic) -> Traffic {
        Traffic {
            simple_queries: self.simple_queries - before.simple_queries,
            parse: self.parse - before.parse,
            bind: self.bind - before.bind,
            execute: self.execute - before.execute,
            sync: self.sync - before.sync,
            messages: self.messages - before.messages,
            round_trips: self.round_trips - before.round_trips,
            bytes_up: self.bytes_up - before.bytes_up,
            bytes_down: self.bytes_down - before.bytes_down,
            connections: self.connections - before.connections,
        }
    }
}

pub struct Proxy {
    pub port: u16,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream_port`.
    pub fn start(upstream_port: u16) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        {
            let counters = counters.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    counters.connections.fetch_add(1, Ordering::SeqCst);
                    spawn_pair(client, server, counters.clone());
                }
            });
        }
        Ok(Proxy {
            port,
            counters,
            stop,
        })
    }

    pub fn snapshot(&self) -> Traffic {
        let c = &self.counters;
        let f = |t: u8| c.frontend[t as usize].load(Ordering::SeqCst);
        Traffic {
            simple_queries: f(b'Q'),
            parse: f(b'P'),
            bind: f(b'B'),
            execute: f(b'E'),
            sync: f(b'S'),
            messages: c.frontend.iter().map(|a| a.load(Ordering::SeqCst)).sum(),
            round_trips: c.ready_for_query.load(Ordering::SeqCst),
            bytes_up: c.bytes_up.load(Ordering::SeqCst),
            bytes_down: c.bytes_down.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn spawn_pair(client: TcpStream, server: TcpStream, counters: Arc<Counters>) {
    // Set when the client asked for SSL/GSS encryption: the server answers with one bare byte.
    let negotiation = Arc::new(AtomicU64::new(0));
    let (c_read, c_write) = (client.try_clone().unwrap(), client);
    let (s_read, s_write) = (server.try_clone().unwrap(), server);
    {
        let counters = counters.clone();
        let negotiation = negotiation.clone();
        thread::spawn(move || {
            let _ = frontend_loop(
                c_read,
                s_write.try_clone().unwrap(),
                &counters,
                &negotiation,
            );
            let _ = s_write.shutdown(Shutdown::Write);
        });
    }
    thread::spawn(move || {
        let _ = backend_loop(
            s_read,
            c_write.try_clone().unwrap(),
            &counters,
            &negotiation,
        );
        let _ = c_write.shutdown(Shutdown::Write);
    });
}

fn frontend_loop(
    mut from: TcpStream,
    mut to: TcpStream,
    counters: &Counters,
    negotiation: &AtomicU64,
) -> io::Result<()> {
    // Startup phase: length-prefixed packets with no type byte, until the real StartupMessage
    // (SSLRequest and GSSENCRequest come first when the client tries encryption).
    loop {
        let mut len = [0u8; 4];
        from.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        from.read_exact(&mut body)?;
        counters.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
        let code = body
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        let is_negotiation = code == 80_877_103 || code == 80_877_104;
        if is_negotiation {
            negotiation.fetch_add(1, Ordering::SeqCst);
        }
        to.write_all(&len)?;
        to.write_all(&body)?;
        if !is_negotiation {
            break;
        }
    }
    loop {
        let mut header = [0u8; 5];
        from.read_exact(&mut header)?;
        let n = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        from.read_exact(&mut body)?;
        counters.frontend[header[0] as usize].fetch_add(1, Ordering::SeqCst);
        counters.bytes_up.fetch_add(1 + n as u64, Ordering::SeqCst);
        to.write_all(&header)?;
        to.write_all(&body)?;
    }
}

fn backend_loop(
    mut from: TcpStream,
    mut to: TcpStream,
    counters: &Counters,
    negotiation: &AtomicU64,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        // Answers to SSLRequest/GSSENCRequest are one bare byte ('N': go on in clear text).
        while negotiation.load(Ordering::SeqCst) > 0 {
            let mut b = [0u8; 1];
            from.read_exact(&mut b)?;
            negotiation.fetch_sub(1, Ordering::SeqCst);
            counters.bytes_down.fetch_add(1, Ordering::SeqCst);
            to.write_all(&b)?;
            if b[0] == b'S' || b[0] == b'G' {
                // Encrypted from here on: just pipe bytes.
                return pipe(from, to, counters);
            }
        }
        let mut header = [0u8; 5];
        from.read_exact(&mut header)?;
        let n = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        buf.resize(n.saturating_sub(4), 0);
        from.read_exact(&mut buf)?;
        counters
            .bytes_down
            .fetch_add(1 + n as u64, Ordering::SeqCst);
        if header[0] == b'Z' {
            counters.ready_for_query.fetch_add(1, Ordering::SeqCst);
        }
        to.write_all(&header)?;
        to.write_all(&buf)?;
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, counters: &Counters) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        counters.bytes_down.fetch_add(n as u64, Ordering::SeqCst);
        to.write_all(&buf[..n])?;
    }
}
