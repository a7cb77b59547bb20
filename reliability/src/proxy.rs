//! A TCP proxy of the suite's own, between the `migrations` binary and the server, that can
//! **cut** the connection (close both sides: each peer reads end-of-file) or **stall** it
//! (stop forwarding in both directions while keeping both sockets open, as a hung middlebox
//! does) at an instant the caller picks.
//!
//! Plain `std::net` and two threads per connection; bytes are forwarded as they come (no
//! protocol parsing is needed: the fault is timed from the server side, through
//! `pg_stat_activity`). A cut applies to every connection, open or later; a stall to the
//! connections open when it starts (flows that hung, as behind a middlebox that lost their
//! state), while later connections are forwarded, so a second connection, like the runner's
//! stall watchdog, can still reach the server. A proxy serves one trial and is dropped after
//! it (dropping cuts whatever is left, so no stalled session outlives its trial).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does with the bytes it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward them (the normal state).
    Forward,
    /// Hold them: nothing more reaches either peer, but both sockets stay open.
    Stall,
    /// Both sockets were shut down: each peer reads end-of-file.
    Cut,
}

struct Shared {
    mode: Mutex<Mode>,
    changed: Condvar,
    /// Both sockets of every connection accepted so far (clones), to shut them down on a cut.
    sockets: Mutex<Vec<TcpStream>>,
    connections: AtomicU64,
    /// A stall holds the connections numbered below this (those open when it started).
    stalled_below: AtomicU64,
    /// Bytes forwarded client → server and server → client.
    up: AtomicU64,
    down: AtomicU64,
    /// Bytes read but held back because of a stall.
    held: AtomicU64,
    stop: AtomicBool,
}

/// A running proxy on `127.0.0.1:<port>` in front of `127.0.0.1:<upstream>`.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to
    /// `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Forward),
            changed: Condvar::new(),
            sockets: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            stalled_below: AtomicU64::new(0),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            held: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        thread::spawn(move || accept_loop(listener, upstream, accepting));
        Ok(Proxy { port, shared })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Bytes forwarded so far: (client → server, server → client).
    pub fn forwarded(&self) -> (u64, u64) {
        (
            self.shared.up.load(Ordering::SeqCst),
            self.shared.down.load(Ordering::SeqCst),
        )
    }

    /// Bytes read during a stall and never forwarded.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *lock(&self.shared.mode)
    }

    /// Stops forwarding in both directions on every open connection; their sockets stay open.
    /// Connections made later are forwarded.
    pub fn stall(&self) {
        let open = self.shared.connections.load(Ordering::SeqCst);
        self.shared.stalled_below.store(open, Ordering::SeqCst);
        self.set(Mode::Stall);
    }

    /// Closes both sides of every connection (a shutdown of each socket: the peers read
    /// end-of-file), and every later connection at once.
    pub fn cut(&self) {
        self.set(Mode::Cut);
        for socket in lock(&self.shared.sockets).iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn set(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        self.shared.changed.notify_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A poisoned lock only means a pump thread panicked; the value (a mode, a list) is still
/// meaningful.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        if *lock(&shared.mode) == Mode::Cut {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        let clones = (client.try_clone(), server.try_clone());
        let (Ok(client2), Ok(server2)) = clones else {
            continue;
        };
        {
            let mut sockets = lock(&shared.sockets);
            if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                sockets.push(a);
                sockets.push(b);
            }
        }
        let up = shared.clone();
        thread::spawn(move || pump(client, server2, &up, Direction::Up, id));
        let down = shared.clone();
        thread::spawn(move || pump(server, client2, &down, Direction::Down, id));
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Copies `from` to `to` until end-of-file, an error or a cut; during a stall, whatever was
/// read (and an end-of-file) is held until the stall ends (by a cut: then it is dropped).
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, direction: Direction, id: u64) {
    let stalled =
        |mode: &Mode| *mode == Mode::Stall && id < shared.stalled_below.load(Ordering::SeqCst);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut mode = lock(&shared.mode);
        if stalled(&mode) {
            shared.held.fetch_add(n as u64, Ordering::SeqCst);
        }
        while stalled(&mode) {
            mode = shared
                .changed
                .wait_timeout(mode, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if *mode == Mode::Cut {
            return;
        }
        drop(mode);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        let counter = match direction {
            Direction::Up => &shared.up,
            Direction::Down => &shared.down,
        };
        counter.fetch_add(n as u64, Ordering::SeqCst);
    }
    // End-of-file from one peer is passed on to the other (a client's Terminate and close),
    // unless the connection is stalled: a hung middlebox passes on nothing, not even that.
    let mut mode = lock(&shared.mode);
    while stalled(&mode) {
        mode = shared
            .changed
            .wait_timeout(mode, Duration::from_millis(200))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    drop(mode);
    let _ = to.shutdown(Shutdown::Write);
}
