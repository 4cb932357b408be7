//! The two witnesses of a socket's life (see ARCHITECTURE.md, "Verified closing"):
//! - the OS socket table: every fd this process holds, asked whether it is a TCP socket and
//!   for its addresses. A socket in TIME_WAIT or orphaned after close has no fd: it belongs
//!   to no process and is not counted;
//! - the in-process [`SocketLedger`]: each connection the connector makes is recorded when
//!   it opens and again when its fd closes (the drop of the stream that owns it).
//!
//! A close is verified only when both agree. When the table cannot be read, callers say
//! "unverified" with the cause; they never count that as zero.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// One TCP socket this process holds open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSocket {
    pub fd: i32,
    /// The socket's inode: the same for every fd that holds it (a `dup`), and for as long
    /// as any of them is open, whatever state the connection is in.
    pub inode: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: String,
}

/// Why the OS socket table could not be read, in words for a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read this process's socket table ({0})")]
pub struct TableUnreadable(pub String);

/// Where a process's open fds are listed: Linux's procfs, else the BSD/macOS `/dev/fd`
/// (on Linux that is a link into procfs, so without /proc neither can be read).
const FD_DIRS: [&str; 2] = ["/proc/self/fd", "/dev/fd"];

/// The fd numbers this process holds, from the first of [`FD_DIRS`] that can be listed.
fn open_fds() -> Result<Vec<i32>, TableUnreadable> {
    #[cfg(target_os = "linux")]
    if let Some(fds) = linux::open_fds() {
        return Ok(fds);
    }
    let mut causes = Vec::new();
    for dir in FD_DIRS {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                return Ok(entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect());
            }
            Err(e) => causes.push(format!("{dir}: {e}")),
        }
    }
    Err(TableUnreadable(causes.join("; ")))
}

/// Listing `/proc/self/fd` without its costs around the listing: each thread keeps the
/// directory open and reads it again from the start, in one buffer, with no allocation per
/// entry. A shutdown asks once per system (eleven walks within a millisecond); opening the
/// directory each time was a path walk and two syscalls more (BENCHMARKS.md, "Idle under
/// 1 ms, the cut at the deadline"). After a lazy unmount of /proc a kept directory still
/// reads the real table; a thread that never listed says it cannot.
#[cfg(target_os = "linux")]
mod linux {
    use std::cell::RefCell;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    thread_local! {
        static FD_DIR: RefCell<Option<OwnedFd>> = const { RefCell::new(None) };
    }

    /// `None` when the directory cannot be opened or read: the caller then says why with
    /// the portable listing.
    pub(super) fn open_fds() -> Option<Vec<i32>> {
        FD_DIR.with(|dir| {
            let mut dir = dir.borrow_mut();
            if dir.is_none() {
                // SAFETY: a NUL-terminated path; the fd returned is ours alone.
                let fd = unsafe {
                    libc::open(
                        c"/proc/self/fd".as_ptr(),
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    )
                };
                if fd < 0 {
                    return None;
                }
                // SAFETY: `fd` was just opened and is owned by nothing else.
                *dir = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            let fd = dir.as_ref()?.as_raw_fd();
            let listed = list(fd);
            if listed.is_none() {
                // Read again from a fresh open next time.
                *dir = None;
            }
            listed
        })
    }

    fn list(fd: i32) -> Option<Vec<i32>> {
        // SAFETY: `fd` is the open directory; rewinding it is what makes it list anew.
        if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } != 0 {
            return None;
        }
        let mut fds = Vec::with_capacity(128);
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: the kernel writes at most `buf.len()` bytes of dirents into `buf`.
            let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return None;
            }
            if n == 0 {
                break;
            }
            // Each record: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the name,
            // NUL-terminated.
            let mut at = 0usize;
            while at + 19 <= n as usize {
                let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                if reclen == 0 || at + reclen > n as usize {
                    return None;
                }
                let name = &buf[at + 19..at + reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if let Some(n) = parse_fd(name) {
                    fds.push(n);
                }
                at += reclen;
            }
        }
        // The listing's own fd is the directory, not one of the process's sockets: it stays,
        // as any fd does, and is never a socket.
        Some(fds)
    }

    /// A decimal fd number; `.` and `..` are not.
    fn parse_fd(name: &[u8]) -> Option<i32> {
        if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(name).ok()?.parse().ok()
    }
}

/// Whether `fd` is a socket, and its inode, by fstat(2) (portable, one syscall).
fn socket_inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat writes only into the zeroed struct we own; a closed fd gives EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    ((st.st_mode & libc::S_IFMT) == libc::S_IFSOCK).then_some(st.st_ino as u64)
}

/// Every TCP socket this process holds, once each with one of its fds: each socket fd
/// asked for its type and addresses. A socket held under several fds (a `dup`) is one
/// socket: counts are of sockets, not of fds. (`/proc/self/net/tcp` says the same but walks
/// the kernel's whole connection hash table on every read: 5–8 ms here.)
pub fn process_tcp_sockets() -> Result<Vec<OwnedSocket>, TableUnreadable> {
    process_tcp_sockets_except(&[])
}

/// The TCP sockets among `inodes` this process holds, under any fd: one fstat(2) per fd to
/// find them, the four calls of [`process_tcp_sockets`] only for those (a system's witness
/// asks about its own few among the hundred the sandbox and the other systems hold).
fn tcp_sockets_with_inodes(inodes: &[u64]) -> Result<Vec<OwnedSocket>, TableUnreadable> {
    let mut seen = Vec::new();
    Ok(open_fds()?
        .into_iter()
        .filter_map(|fd| {
            let inode = socket_inode(fd).filter(|i| inodes.contains(i) && !seen.contains(i))?;
            seen.push(inode);
            inspect_socket(fd, inode)
        })
        .collect())
}

/// A TCP socket's addresses, or `None` for other sockets (Unix, UDP) and closed fds.
fn inspect_socket(fd: i32, inode: u64) -> Option<OwnedSocket> {
    inspect_socket_unless(fd, inode, &[])
}

/// [`inspect_socket`], except for sockets whose local port is in `skip` (the sandbox's):
/// the local address is asked first, so those cost one call, not three.
fn inspect_socket_unless(fd: i32, inode: u64, skip: &[u16]) -> Option<OwnedSocket> {
    // SAFETY: the fd is only borrowed for the getsockopt/getsockname/getpeername calls
    // below; if it was closed meanwhile they fail with EBADF, which we treat as "gone".
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    // A Unix socket has no inet address: `as_socket` leaves it out here.
    let local = sock.local_addr().ok()?.as_socket()?;
    if skip.contains(&local.port()) || sock.r#type().ok()? != socket2::Type::STREAM {
        return None;
    }
    let (remote, state) = match sock.peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(peer) => (peer, "connected"),
        None => (
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            "unconnected",
        ),
    };
    Some(OwnedSocket {
        fd,
        inode,
        local: normalize(local),
        remote: normalize(remote),
        state: state.to_string(),
    })
}

/// Every TCP socket this process holds but those whose local port is in `excluded_ports`
/// (the in-process sandbox's listeners and server-side connections): the process-wide
/// check's table, read at the end of every shutdown.
pub fn process_tcp_sockets_except(
    excluded_ports: &[u16],
) -> Result<Vec<OwnedSocket>, TableUnreadable> {
    let mut seen = std::collections::HashSet::new();
    Ok(open_fds()?
        .into_iter()
        .filter_map(|fd| {
            let inode = socket_inode(fd).filter(|&i| seen.insert(i))?;
            inspect_socket_unless(fd, inode, excluded_ports)
        })
        .collect())
}

/// The inodes of every socket this process holds (any kind), sorted: it changes whenever a
/// socket is opened or closed, so a sampler can skip measuring when nothing moved.
pub fn socket_inodes() -> Result<Vec<u64>, TableUnreadable> {
    let mut inodes: Vec<u64> = open_fds()?.into_iter().filter_map(socket_inode).collect();
    inodes.sort_unstable();
    Ok(inodes)
}

/// Count of this process's TCP sockets, leaving out those whose local port is one of
/// `excluded_ports` (the in-process sandbox's listeners and server-side connections).
pub fn count_process_sockets(excluded_ports: &[u16]) -> Result<usize, TableUnreadable> {
    Ok(process_tcp_sockets_except(excluded_ports)?.len())
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket) compare equal to their IPv4 form.
fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// One connection as its connector recorded it.
#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    fd: i32,
    /// The socket's inode when recorded (0 if fstat failed: then only the addresses match).
    inode: u64,
    local: SocketAddr,
    remote: SocketAddr,
    /// Set when the stream owning the fd was dropped (the fd is closed by then).
    closed: bool,
}

/// The connections one system opened, each recorded when made and again when its fd closed.
/// Entries stay after their close until an OS table read confirms them gone, so the table
/// witness can still find a socket the ledger believes closed.
#[derive(Debug)]
pub struct SocketLedger {
    entries: Mutex<Vec<Entry>>,
    /// Connections open by the ledger's account; waiters wake on every change.
    open: watch::Sender<usize>,
    opened: AtomicU64,
    next_id: AtomicU64,
    /// A panic while the lock was held: the entries may be half-updated, so the ledger no
    /// longer vouches for anything (see [`SocketLedger::trust`]).
    poisoned: AtomicBool,
    /// Test hook ([`SocketLedger::leak_next`]): duplicate the next connection's fd.
    leak_next: AtomicBool,
    /// The duplicates that hook made, held until the process exits.
    leaked: Mutex<Vec<std::os::fd::OwnedFd>>,
    /// When the last connection closed: a step of a close's timeline.
    last_close: Mutex<Option<std::time::Instant>>,
}

impl Default for SocketLedger {
    fn default() -> Self {
        SocketLedger {
            entries: Mutex::default(),
            open: watch::channel(0).0,
            opened: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            leak_next: AtomicBool::new(false),
            leaked: Mutex::default(),
            last_close: Mutex::new(None),
        }
    }
}

/// Held by the stream that owns a connection's fd; its drop records the close.
#[derive(Debug)]
pub struct ConnectionRecord {
    ledger: Arc<SocketLedger>,
    id: u64,
}

impl Drop for ConnectionRecord {
    fn drop(&mut self) {
        self.ledger.closed(self.id);
    }
}

impl SocketLedger {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| {
            self.poisoned.store(true, Ordering::Relaxed);
            p.into_inner()
        })
    }

    /// Record a connection just made; keep the returned record with the stream that owns
    /// `fd`, and drop it after the fd is closed.
    pub fn record(
        self: &Arc<Self>,
        fd: i32,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> ConnectionRecord {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.opened.fetch_add(1, Ordering::Relaxed);
        if self.leak_next.swap(false, Ordering::Relaxed) {
            self.hold_duplicate(fd, remote);
        }
        let inode = socket_inode(fd).unwrap_or(0);
        let mut entries = self.lock();
        entries.push(Entry {
            id,
            fd,
            inode,
            local: normalize(local),
            remote: normalize(remote),
            closed: false,
        });
        // Published under the lock: counts sent after it could land out of order.
        self.open
            .send_replace(entries.iter().filter(|e| !e.closed).count());
        drop(entries);
        ConnectionRecord {
            ledger: self.clone(),
            id,
        }
    }

    fn closed(&self, id: u64) {
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
            e.closed = true;
        }
        *self
            .last_close
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        // Published under the lock, as in `record`.
        self.open
            .send_replace(entries.iter().filter(|e| !e.closed).count());
    }

    /// When a connection last closed (its fd), if one ever did.
    pub fn last_close(&self) -> Option<std::time::Instant> {
        *self
            .last_close
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connections opened since start.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connections open by the ledger's own account (no syscall).
    pub fn open_count(&self) -> usize {
        *self.open.borrow()
    }

    /// Whether the ledger can vouch for its counts: `Err` with the cause when a panic
    /// poisoned its lock.
    pub fn trust(&self) -> Result<(), String> {
        if self.poisoned.load(Ordering::Relaxed) || self.entries.is_poisoned() {
            self.poisoned.store(true, Ordering::Relaxed);
            return Err("the connection ledger's lock was poisoned by a panic".into());
        }
        Ok(())
    }

    /// Wait until the ledger counts no open connection, or `until`, or `stop` fires.
    /// Woken by each close, not polled. Returns whether none is open.
    pub async fn wait_all_closed(
        &self,
        until: tokio::time::Instant,
        stop: &tokio_util::sync::CancellationToken,
    ) -> bool {
        let mut rx = self.open.subscribe();
        tokio::select! {
            r = rx.wait_for(|n| *n == 0) => r.is_ok(),
            _ = tokio::time::sleep_until(until) => self.open_count() == 0,
            _ = stop.cancelled() => self.open_count() == 0,
        }
    }

    /// The inodes of every connection the ledger still remembers (open, or closed and not
    /// yet confirmed gone); `None` if one has none, so only its addresses can find it.
    fn inodes(&self) -> Option<Vec<u64>> {
        self.lock()
            .iter()
            .map(|e| (e.inode != 0).then_some(e.inode))
            .collect()
    }

    /// The connections the ledger counts open, with the fds they were made on.
    pub fn open_connections(&self) -> Vec<OwnedSocket> {
        self.lock()
            .iter()
            .filter(|e| !e.closed)
            .map(|e| OwnedSocket {
                fd: e.fd,
                inode: e.inode,
                local: e.local,
                remote: e.remote,
                state: "open (ledger)".into(),
            })
            .collect()
    }

    /// The OS witness: this system's sockets still in `table`, whatever the ledger thinks
    /// of them. A socket is found by its inode, which every fd holding it shares (a `dup`
    /// kept elsewhere) and which stays while any fd is open: a connection shut down under a
    /// holder that keeps its fd reads as unconnected (no peer), yet it is still open. Each
    /// is named by the addresses it was made with. Entries the ledger saw close and the
    /// table no longer has are forgotten (an inode, and a (local, remote) pair, are unique
    /// while open, so a later reuse cannot be confused).
    pub fn open_sockets(&self, table: &[OwnedSocket]) -> Vec<OwnedSocket> {
        let mut open = Vec::new();
        self.lock().retain(|e| {
            let found = table.iter().find(|s| {
                (e.inode != 0 && s.inode == e.inode) || (s.local == e.local && s.remote == e.remote)
            });
            if let Some(s) = found {
                open.push(OwnedSocket {
                    local: e.local,
                    remote: e.remote,
                    ..s.clone()
                });
            }
            found.is_some() || !e.closed
        });
        open
    }

    /// Test hook, as [`SocketLedger::poison`] is: the next connection recorded gets a
    /// duplicate of its fd (`dup(2)`), held here until the process exits, outside the
    /// stream that owns the connection. Its pool can then close and drop the stream, and
    /// the ledger hear of the close, while the socket stays open: the leak a bug holding a
    /// clone of a connection would make, for the witnesses to find. The app sets it only
    /// through its hidden `--test-leak-socket` flag.
    #[doc(hidden)]
    pub fn leak_next(&self) {
        self.leak_next.store(true, Ordering::Relaxed);
    }

    fn hold_duplicate(&self, fd: i32, remote: SocketAddr) {
        // SAFETY: `fd` is the connection the caller just made and still owns; it is only
        // borrowed for the dup.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match borrowed.try_clone_to_owned() {
            Ok(dup) => {
                tracing::warn!(fd, dup = std::os::fd::AsRawFd::as_raw_fd(&dup), %remote,
                    "test hook: a duplicate of this connection's fd is held open past its close");
                self.leaked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(dup);
            }
            Err(e) => tracing::error!(fd, error = %e, "test hook: cannot duplicate the fd"),
        }
    }

    /// Test hook: panic while holding the lock, as a bug would.
    #[doc(hidden)]
    pub fn poison(&self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = self.entries.lock();
            panic!("poisoning the ledger for a test");
        }));
    }
}

/// What both witnesses say of one set of connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// Open by either witness (an fd the table still lists, or a stream not yet dropped).
    pub open: Vec<OwnedSocket>,
    /// Why the result is not verified (a witness could not be asked), if so.
    pub unverified: Option<String>,
}

/// What a witness is asked about besides a ledger's connections: sockets it picks from the
/// whole table (a listener, which no connector records).
pub type Also<'a> = Option<&'a (dyn Fn(&OwnedSocket) -> bool + Sync)>;

/// Ask both witnesses now about `ledger`'s connections, and about the sockets `also`
/// picks from the table.
pub fn witness(ledger: &SocketLedger, also: Also<'_>) -> Witnessed {
    let by_ledger = ledger.open_connections();
    let trust = ledger.trust().err();
    // The OS table is read either way; only the sockets asked about are inspected.
    let table = match (also, ledger.inodes()) {
        // Nothing the table could hold for it: whether the table can be read is all there
        // is to ask (a listing, without a call per fd).
        (None, Some(inodes)) if inodes.is_empty() => open_fds().map(|_| Vec::new()),
        (None, Some(inodes)) => tcp_sockets_with_inodes(&inodes),
        _ => process_tcp_sockets(),
    };
    match table {
        Ok(table) => {
            let mut open = ledger.open_sockets(&table);
            for s in table.iter().filter(|s| also.is_some_and(|pick| pick(s))) {
                if !open.iter().any(|o| o.inode == s.inode) {
                    open.push(s.clone());
                }
            }
            for s in by_ledger {
                if !open.iter().any(|o| {
                    (s.inode != 0 && o.inode == s.inode)
                        || (o.local == s.local && o.remote == s.remote)
                }) {
                    open.push(s);
                }
            }
            Witnessed {
                open,
                unverified: trust,
            }
        }
        Err(e) => Witnessed {
            open: by_ledger,
            unverified: Some(trust.map_or(e.to_string(), |t| format!("{t}; {e}"))),
        },
    }
}

/// Sockets as a person finds them in `ss` or a packet capture: `local → peer`, joined by
/// commas (the cause of a close that left them open).
pub fn named(socks: &[OwnedSocket]) -> String {
    socks
        .iter()
        .map(|s| format!("{} → {}", s.local, s.remote))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shut a socket down under whoever holds it: both directions, so the task owning it sees
/// EOF/errors and drops it. The fd itself stays owned (and is closed) by that task.
pub fn shutdown_socket(sock: &OwnedSocket) -> std::io::Result<()> {
    // The fd may have closed and been reused since it was recorded: act only if it still
    // holds this very socket.
    match socket_inode(sock.fd) {
        Some(now) if now == sock.inode => {}
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the fd no longer holds that socket",
            ));
        }
    }
    // SAFETY: shutdown(2) on an fd number changes no memory; the fd was just checked to be
    // this socket.
    let rc = unsafe { libc::shutdown(sock.fd, libc::SHUT_RDWR) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closes on several threads at once: the count waiters see must end where the entries
    /// do. Publishing the count after the lock was let go let an older count land last, and
    /// a close then waited out its whole grace for a connection already gone (about 1 in
    /// 300 shutdowns in `benches/shutdown.rs`).
    #[test]
    fn the_open_count_agrees_with_the_entries_after_concurrent_closes() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (fd, local, remote) = (
            client.as_raw_fd(),
            client.local_addr().unwrap(),
            client.peer_addr().unwrap(),
        );
        // Eight threads (more than the cores, so a thread can be preempted in the window)
        // live for the whole test and spin, so that each round they drop their records at
        // the same instant.
        use std::sync::atomic::AtomicUsize;
        let slots: [Mutex<Option<ConnectionRecord>>; 8] = Default::default();
        let (round_now, dropped) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let rounds = 100_000;
        let spin_until = |ready: &dyn Fn() -> bool| {
            while !ready() {
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        };
        // Asserted after the scope: a panic inside it would leave the threads waiting.
        let mut stale = Vec::new();
        std::thread::scope(|s| {
            for slot in &slots {
                let (round_now, dropped, spin_until) = (&round_now, &dropped, &spin_until);
                s.spawn(move || {
                    for round in 1..=rounds {
                        spin_until(&|| round_now.load(Ordering::Acquire) == round);
                        drop(slot.lock().unwrap().take());
                        dropped.fetch_add(1, Ordering::AcqRel);
                    }
                });
            }
            for round in 1..=rounds {
                let ledger = Arc::new(SocketLedger::default());
                for slot in &slots {
                    *slot.lock().unwrap() = Some(ledger.record(fd, local, remote));
                }
                round_now.store(round, Ordering::Release);
                spin_until(&|| dropped.load(Ordering::Acquire) == round * slots.len());
                if !ledger.open_connections().is_empty() || ledger.open_count() != 0 {
                    stale.push(round);
                }
            }
        });
        assert_eq!(
            stale,
            Vec::<usize>::new(),
            "rounds where a stale count landed last"
        );
    }

    #[test]
    fn both_witnesses_see_a_connection_until_its_record_drops_after_the_fd() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let ledger = Arc::new(SocketLedger::default());
        let record = ledger.record(
            client.as_raw_fd(),
            client.local_addr().unwrap(),
            client.peer_addr().unwrap(),
        );
        assert_eq!(ledger.open_count(), 1);
        let seen = witness(&ledger, None);
        assert_eq!(seen.unverified, None);
        assert_eq!(seen.open.len(), 1);
        assert_eq!(seen.open[0].local, client.local_addr().unwrap());
        // The listener and the accepted socket both have the server's local port. Other
        // tests open and close sockets in parallel between the two reads: retry until both
        // reads saw the same moment.
        let excluded = (0..50)
            .filter_map(|_| {
                count_process_sockets(&[])
                    .unwrap()
                    .checked_sub(count_process_sockets(&[addr.port()]).unwrap())
            })
            .find(|d| *d == 2);
        assert_eq!(excluded, Some(2));
        // The fd closes first, then the record: both witnesses agree it is gone.
        drop(client);
        drop(record);
        assert_eq!(ledger.open_count(), 0);
        assert_eq!(witness(&ledger, None).open, Vec::new());
        assert_eq!(ledger.opened(), 1);
        drop(server);
    }

    #[test]
    fn a_socket_the_ledger_saw_close_but_the_table_still_lists_is_open() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let ledger = Arc::new(SocketLedger::default());
        // The record goes while the fd stays open: the witnesses disagree.
        drop(ledger.record(
            client.as_raw_fd(),
            client.local_addr().unwrap(),
            client.peer_addr().unwrap(),
        ));
        assert_eq!(ledger.open_count(), 0);
        let seen = witness(&ledger, None);
        assert_eq!(seen.open.len(), 1, "the OS table still has it");
        drop(client);
        assert!(witness(&ledger, None).open.is_empty());
    }

    #[test]
    fn a_poisoned_ledger_keeps_its_counts_but_vouches_for_nothing() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let ledger = Arc::new(SocketLedger::default());
        let record = ledger.record(
            client.as_raw_fd(),
            client.local_addr().unwrap(),
            client.peer_addr().unwrap(),
        );
        ledger.poison();
        assert_eq!(ledger.open_count(), 1);
        drop(client);
        drop(record);
        assert_eq!(ledger.open_count(), 0, "closes are still recorded");
        let seen = witness(&ledger, None);
        assert!(seen.open.is_empty());
        let why = seen.unverified.expect("a poisoned ledger is not a witness");
        assert!(why.contains("poisoned"), "{why}");
    }

    #[test]
    fn shutdown_socket_makes_the_peer_see_eof() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let table = process_tcp_sockets().unwrap();
        // By both ends: another test's connection may share the client's local port (to
        // another server), and shutting that one would fail both tests.
        let mine = table
            .iter()
            .find(|s| {
                s.local == client.local_addr().unwrap() && s.remote == client.peer_addr().unwrap()
            })
            .unwrap();
        shutdown_socket(mine).unwrap();
        // Bounded: a shutdown that did nothing fails here rather than hangs.
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 0);
    }

    /// The witness that inspects only its ledger's inodes still finds a connection whose
    /// recorded fd is closed but whose duplicate is held under another fd (a leak), names it
    /// by that fd, and does not report the other sockets of the process.
    #[test]
    fn a_duplicate_held_under_another_fd_is_found_by_its_inode() {
        use std::os::fd::AsRawFd;
        let (_listener, client, _server) = connection();
        let (_other_listener, _other_client, _other_server) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let record = record_of(&ledger, &client);
        let dup = client.try_clone().unwrap();
        let recorded_fd = client.as_raw_fd();
        drop(client);
        drop(record);
        assert_eq!(ledger.open_count(), 0, "the ledger saw its fd close");
        let seen = witness(&ledger, None);
        assert_eq!(seen.unverified, None);
        assert_eq!(seen.open.len(), 1, "{seen:?}");
        assert_eq!(seen.open[0].fd, dup.as_raw_fd());
        assert_ne!(seen.open[0].fd, recorded_fd);
        assert_eq!(seen.open[0].local, dup.local_addr().unwrap());
        drop(dup);
        assert_eq!(witness(&ledger, None).open, Vec::new());
    }

    /// A socket held under two fds is one socket, in the process table (which the
    /// shutdown's count of sockets left comes from) as in a system's witness.
    #[test]
    fn a_socket_under_two_fds_counts_once() {
        let (_listener, client, _server) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let _record = record_of(&ledger, &client);
        let _dup = client.try_clone().unwrap();
        let local = client.local_addr().unwrap();
        let in_table = process_tcp_sockets()
            .unwrap()
            .into_iter()
            .filter(|s| s.local == local)
            .count();
        assert_eq!(in_table, 1, "one socket, two fds");
        assert_eq!(witness(&ledger, None).open.len(), 1);
    }

    /// Asked about some inodes, the table lists those sockets and no other, once each.
    #[test]
    fn the_table_by_inodes_lists_only_the_sockets_asked_about() {
        use std::os::fd::AsRawFd;
        let (_listener, client, _server) = connection();
        let (_other_listener, _other_client, _other_server) = connection();
        let _dup = client.try_clone().unwrap();
        let inode = socket_inode(client.as_raw_fd()).unwrap();
        let found = tcp_sockets_with_inodes(&[inode]).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].inode, inode);
        assert_eq!(found[0].local, client.local_addr().unwrap());
    }

    /// A loopback connection: the listener, the client and the accepted end.
    fn connection() -> (
        std::net::TcpListener,
        std::net::TcpStream,
        std::net::TcpStream,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (listener, client, server)
    }

    fn record_of(ledger: &Arc<SocketLedger>, s: &std::net::TcpStream) -> ConnectionRecord {
        use std::os::fd::AsRawFd;
        ledger.record(
            s.as_raw_fd(),
            s.local_addr().unwrap(),
            s.peer_addr().unwrap(),
        )
    }

    /// The listing each thread keeps open reads the fd table as it is now, every time: an fd
    /// opened after a listing is in the next one, and one closed is not. The fds are placed
    /// at numbers no other test's fd takes (the kernel gives the lowest free one).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kept_fd_listing_reads_the_table_anew_each_time() {
        use std::os::fd::AsRawFd;
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: getrlimit writes only into the struct we own.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        let high = (limit.rlim_cur.min(4096) as i32) - 1;
        let (_listener, client, _server) = connection();
        let first = linux::open_fds().unwrap();
        let placed = [high, high - 1];
        for fd in placed {
            assert!(!first.contains(&fd), "fd {fd} in use before the test");
            // SAFETY: dup2 onto a number nothing holds; closed below.
            assert_eq!(unsafe { libc::dup2(client.as_raw_fd(), fd) }, fd);
        }
        let during = linux::open_fds().unwrap();
        assert!(during.contains(&client.as_raw_fd()));
        for fd in placed {
            assert!(during.contains(&fd), "fd {fd} missing from {during:?}");
            assert_eq!(socket_inode(fd), socket_inode(client.as_raw_fd()));
        }
        for fd in placed {
            // SAFETY: the fd was placed above by this test and is closed once.
            assert_eq!(unsafe { libc::close(fd) }, 0);
        }
        let after = linux::open_fds().unwrap();
        for fd in placed {
            assert!(!after.contains(&fd), "fd {fd} still listed after its close");
        }
    }

    /// The process-wide check's table leaves out the sockets on the ports it is told (the
    /// sandbox's), and only those.
    #[test]
    fn the_table_except_ports_leaves_out_only_those_ports() {
        let (listener, client, server) = connection();
        let port = listener.local_addr().unwrap().port();
        let all = process_tcp_sockets().unwrap();
        let except = process_tcp_sockets_except(&[port]).unwrap();
        let on_port = |t: &[OwnedSocket]| t.iter().filter(|s| s.local.port() == port).count();
        // The listener and the server's end of the connection are on the port.
        assert_eq!(on_port(&all), 2);
        assert_eq!(on_port(&except), 0);
        let client_local = client.local_addr().unwrap();
        assert!(
            except
                .iter()
                .any(|s| s.local == client_local && s.state == "connected")
        );
        drop((listener, client, server));
    }

    #[test]
    fn a_socket_fd_has_its_inode_and_a_file_fd_none() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let (listener, _client, _server) = connection();
        let fd = listener.as_raw_fd();
        // The inode as procfs tells it, a reader independent of fstat(2).
        let ino = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        assert_eq!(socket_inode(fd), Some(ino));
        assert!(socket_inodes().unwrap().contains(&ino));
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(socket_inode(file.as_raw_fd()), None);
        assert_eq!(socket_inode(-1), None);
        let inodes = socket_inodes().unwrap();
        assert!(inodes.is_sorted(), "{inodes:?}");
    }

    #[test]
    fn the_ledger_counts_every_connection_it_opened_and_waits_for_the_last_close() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_listener, a, _a_end) = connection();
        let (_listener2, b, _b_end) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let never = tokio_util::sync::CancellationToken::new();
        let soon = || tokio::time::Instant::now() + std::time::Duration::from_millis(10);
        assert!(
            rt.block_on(ledger.wait_all_closed(soon(), &never)),
            "none open"
        );
        assert_eq!(ledger.last_close(), None);
        let ra = record_of(&ledger, &a);
        let rb = record_of(&ledger, &b);
        assert_eq!((ledger.opened(), ledger.open_count()), (2, 2));
        assert!(!rt.block_on(ledger.wait_all_closed(soon(), &never)));
        let before = std::time::Instant::now();
        drop(ra);
        assert_eq!(ledger.open_count(), 1);
        assert!(ledger.last_close().is_some_and(|t| t >= before));
        let stop = tokio_util::sync::CancellationToken::new();
        stop.cancel();
        // A bound for a stuck test: a ledger that never counts down fails here.
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        assert!(
            !rt.block_on(ledger.wait_all_closed(far, &stop)),
            "stopped with one open"
        );
        drop(rb);
        assert!(rt.block_on(ledger.wait_all_closed(far, &never)));
        assert_eq!((ledger.opened(), ledger.open_count()), (2, 0));
    }

    #[test]
    fn a_ledger_is_distrusted_as_soon_as_a_panic_poisons_it() {
        let ledger = SocketLedger::default();
        assert_eq!(ledger.trust(), Ok(()));
        ledger.poison();
        assert!(ledger.trust().is_err(), "before any other use of the lock");
        assert!(ledger.trust().is_err());
    }

    /// Two connections to one server share its address as their remote end: each is told
    /// apart by both ends, once, whichever witness sees it.
    #[test]
    fn each_witness_tells_connections_to_one_server_apart() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let one = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let two = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let ledger = Arc::new(SocketLedger::default());
        let _r1 = record_of(&ledger, &one);
        let _r2 = record_of(&ledger, &two);
        let (one_local, one_fd) = (one.local_addr().unwrap(), one.as_raw_fd());
        // The first one's fd closes, its record stays: only the ledger still sees it.
        drop(one);
        let seen = witness(&ledger, None);
        assert_eq!(seen.unverified, None);
        assert_eq!(seen.open.len(), 2, "{:?}", seen.open);
        let by_table = seen
            .open
            .iter()
            .find(|s| s.local == two.local_addr().unwrap())
            .expect("the second one, from the table");
        assert_eq!(
            (by_table.fd, by_table.state.as_str()),
            (two.as_raw_fd(), "connected")
        );
        let by_ledger = seen.open.iter().find(|s| s.local == one_local);
        assert_eq!(
            by_ledger.map(|s| (s.fd, s.state.as_str())),
            Some((one_fd, "open (ledger)")),
            "{:?}",
            seen.open
        );
        // Asked again, the ledger still vouches for its open entry.
        assert_eq!(witness(&ledger, None).open.len(), 2);
        assert_eq!(ledger.open_connections().len(), 2);
    }

    /// What `also` picks from the table (a listener no connector records) is open too, once.
    #[test]
    fn a_witness_also_sees_the_sockets_it_is_asked_about() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ledger = SocketLedger::default();
        let seen = witness(&ledger, Some(&|s| s.local == addr));
        assert_eq!(seen.open.len(), 1, "{:?}", seen.open);
        assert_eq!(seen.open[0].state, "unconnected");
        drop(listener);
        assert!(witness(&ledger, Some(&|s| s.local == addr)).open.is_empty());
    }

    /// An fd closed and reused since it was recorded holds another connection: it is not shut.
    #[test]
    fn shutdown_socket_leaves_an_fd_that_now_holds_another_connection() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (_listener, client, mut server) = connection();
        let here = OwnedSocket {
            fd: client.as_raw_fd(),
            inode: socket_inode(client.as_raw_fd()).unwrap(),
            local: client.local_addr().unwrap(),
            remote: client.peer_addr().unwrap(),
            state: "connected".into(),
        };
        // The record of a socket that was on this fd number before: another inode, whatever
        // its addresses.
        let stale = OwnedSocket {
            inode: here.inode.wrapping_add(1),
            ..here.clone()
        };
        let e = shutdown_socket(&stale).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        // Still connected both ways.
        (&client).write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    /// The lean witness asks the table only about the ledger's inodes, every entry's, open
    /// or closed and not yet confirmed gone; an entry with no inode (fstat failed) can be
    /// found only by its addresses, so then the whole table is read (`None`).
    #[test]
    fn the_witness_asks_about_the_ledgers_inodes_or_reads_the_whole_table() {
        use std::os::fd::AsRawFd;
        let (_listener, one, _one_end) = connection();
        let (_other_listener, two, _two_end) = connection();
        let ledger = Arc::new(SocketLedger::default());
        assert_eq!(ledger.inodes(), Some(vec![]));
        let _r1 = record_of(&ledger, &one);
        let r2 = record_of(&ledger, &two);
        let inode = |s: &std::net::TcpStream| socket_inode(s.as_raw_fd()).unwrap();
        drop(r2);
        assert_eq!(ledger.inodes(), Some(vec![inode(&one), inode(&two)]));
        let _no_inode = ledger.record(
            -1,
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        assert_eq!(ledger.inodes(), None);
    }

    /// A socket the table finds by its inode alone (shut down under a holder that keeps a
    /// `dup` of its fd, it reads as unconnected) is this system's, named by the addresses
    /// it was made with, whatever the table reads for it now; a socket of another inode
    /// with the same local address and another peer is not.
    #[test]
    fn a_socket_found_by_its_inode_is_named_by_the_addresses_it_was_made_with() {
        use std::os::fd::AsRawFd;
        let (_listener, client, _server) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let record = record_of(&ledger, &client);
        let inode = socket_inode(client.as_raw_fd()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let nowhere = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
        let shut = OwnedSocket {
            fd: 1000,
            inode,
            local: nowhere,
            remote: nowhere,
            state: "unconnected".into(),
        };
        let stranger = OwnedSocket {
            fd: 1001,
            inode: inode.wrapping_add(1),
            local,
            remote: "127.0.0.1:9".parse().unwrap(),
            state: "connected".into(),
        };
        assert_eq!(
            ledger.open_sockets(&[stranger.clone(), shut.clone()]),
            vec![OwnedSocket {
                local,
                remote,
                ..shut
            }]
        );
        drop(record);
        assert_eq!(ledger.open_sockets(&[stranger]), Vec::new());
        assert_eq!(
            ledger.inodes(),
            Some(vec![]),
            "the closed entry is forgotten"
        );
    }

    /// `also` adds the sockets it picks beside the ledger's, each once: a listener, and a
    /// connection the ledger already has.
    #[test]
    fn a_witness_asked_also_about_a_ledgers_connection_lists_it_once() {
        let (listener, client, _server) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let _record = record_of(&ledger, &client);
        let (server_addr, client_addr) =
            (listener.local_addr().unwrap(), client.local_addr().unwrap());
        let pick = |s: &OwnedSocket| {
            s.local == server_addr && s.state == "unconnected" || s.local == client_addr
        };
        let seen = witness(&ledger, Some(&pick));
        let mut locals: Vec<SocketAddr> = seen.open.iter().map(|s| s.local).collect();
        locals.sort();
        let mut expected = vec![server_addr, client_addr];
        expected.sort();
        assert_eq!(locals, expected, "{:?}", seen.open);
    }

    /// The test hook the app's `--test-leak-socket` sets: the next connection's fd is
    /// duplicated and held, so after its stream and record are gone the OS witness still
    /// finds it open, under the duplicate's fd; only that connection.
    #[test]
    fn leak_next_holds_the_next_connection_open_past_its_close() {
        use std::os::fd::AsRawFd;
        let (_listener, leaky, _leaky_end) = connection();
        let (_other_listener, fine, _fine_end) = connection();
        let ledger = Arc::new(SocketLedger::default());
        ledger.leak_next();
        let (leaky_fd, leaky_local) = (leaky.as_raw_fd(), leaky.local_addr().unwrap());
        let r1 = record_of(&ledger, &leaky);
        let r2 = record_of(&ledger, &fine);
        drop((leaky, r1, fine, r2));
        assert_eq!(ledger.open_count(), 0, "the ledger heard both close");
        let seen = witness(&ledger, None);
        assert_eq!(seen.open.len(), 1, "{seen:?}");
        assert_eq!(seen.open[0].local, leaky_local);
        // The duplicate's fd, not the recorded one (which may have been reused since).
        let held: Vec<i32> = ledger
            .leaked
            .lock()
            .unwrap()
            .iter()
            .map(|f| f.as_raw_fd())
            .collect();
        assert_eq!(held, vec![seen.open[0].fd]);
        assert_ne!(seen.open[0].fd, leaky_fd);
        // Let the socket go: other tests count this process's sockets.
        ledger.leaked.lock().unwrap().clear();
        assert_eq!(witness(&ledger, None).open, Vec::new());
    }

    /// A connection recorded without its inode (fstat failed) is found in the table by its
    /// addresses, and both witnesses seeing it make it one open socket, not two.
    #[test]
    fn a_connection_without_an_inode_is_found_by_its_addresses_once() {
        use std::os::fd::AsRawFd;
        let (_listener, client, _server) = connection();
        let ledger = Arc::new(SocketLedger::default());
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let _record = ledger.record(-1, local, remote);
        let seen = witness(&ledger, None);
        assert_eq!(seen.unverified, None);
        assert_eq!(seen.open.len(), 1, "{:?}", seen.open);
        assert_eq!(
            (seen.open[0].fd, seen.open[0].local, seen.open[0].remote),
            (client.as_raw_fd(), local, remote),
            "the table's socket, under its fd"
        );
    }

    /// A close's error names its sockets as `ss` shows them: `local → peer`, by commas.
    #[test]
    fn named_lists_each_socket_local_to_peer() {
        let sock = |local: &str, remote: &str| OwnedSocket {
            fd: 3,
            inode: 7,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state: "connected".into(),
        };
        assert_eq!(
            named(&[
                sock("127.0.0.1:40000", "127.0.0.1:443"),
                sock("[::1]:40001", "[::1]:8080"),
            ]),
            "127.0.0.1:40000 → 127.0.0.1:443, [::1]:40001 → [::1]:8080"
        );
        assert_eq!(named(&[]), "");
    }
}
