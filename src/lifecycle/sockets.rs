//! Measuring TCP sockets for real: the process's own sockets are the `socket:[inode]` links
//! under `/proc/self/fd`. A socket in TIME_WAIT or orphaned after close has no fd: it belongs
//! to no process and is not counted.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One TCP socket this process holds open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSocket {
    pub fd: i32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: String,
}

/// Every TCP socket this process holds, with its fd: each `socket:[inode]` link under
/// `/proc/self/fd` asked for its type and addresses. (`/proc/self/net/tcp` says the same but
/// walks the kernel's whole connection hash table on every read: 5–8 ms here, too slow to
/// poll while closing.)
pub fn process_tcp_sockets() -> std::io::Result<Vec<OwnedSocket>> {
    let mut owned = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // An fd can close between listing and reading it: that is not an error.
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:[") {
            continue;
        }
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|f| f.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(sock) = inspect_socket(fd) {
            owned.push(sock);
        }
    }
    Ok(owned)
}

/// A TCP socket's addresses, or `None` for other sockets (Unix, UDP) and closed fds.
fn inspect_socket(fd: i32) -> Option<OwnedSocket> {
    // SAFETY: the fd is only borrowed for the getsockopt/getsockname/getpeername calls
    // below; if it was closed meanwhile they fail with EBADF, which we treat as "gone".
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    if sock.r#type().ok()? != socket2::Type::STREAM {
        return None;
    }
    let local = sock.local_addr().ok()?.as_socket()?;
    let (remote, state) = match sock.peer_addr().ok().and_then(|a| a.as_socket()) {
        Some(peer) => (peer, "connected"),
        None => (
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            "unconnected",
        ),
    };
    Some(OwnedSocket {
        fd,
        local: normalize(local),
        remote: normalize(remote),
        state: state.to_string(),
    })
}

/// The inodes of every socket this process holds (any kind), sorted: it changes whenever a
/// socket is opened or closed, so a sampler can skip measuring when nothing moved.
pub fn socket_inodes() -> std::io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|i| i.parse().ok())
        {
            inodes.push(inode);
        }
    }
    inodes.sort_unstable();
    Ok(inodes)
}

/// Count of this process's TCP sockets, leaving out those whose local port is one of
/// `excluded_ports` (the in-process sandbox's listeners and server-side connections).
pub fn count_process_sockets(excluded_ports: &[u16]) -> std::io::Result<usize> {
    Ok(process_tcp_sockets()?
        .iter()
        .filter(|s| !excluded_ports.contains(&s.local.port()))
        .count())
}

/// Poll until `mine` finds none of its sockets in the process's table, or `until`, or `stop`
/// (then one last look); returns what is still open. Sockets close when their owning task is
/// next scheduled: the first looks only yield to them (a socket usually goes within
/// microseconds), later ones sleep a millisecond.
pub async fn wait_gone(
    until: tokio::time::Instant,
    stop: &tokio_util::sync::CancellationToken,
    mut mine: impl FnMut(&[OwnedSocket]) -> Vec<OwnedSocket>,
) -> Vec<OwnedSocket> {
    let mut looks = 0u32;
    loop {
        if looks < 16 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        looks += 1;
        let left = match process_tcp_sockets() {
            Ok(table) => mine(&table),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the socket table");
                return Vec::new();
            }
        };
        if left.is_empty() || tokio::time::Instant::now() >= until || stop.is_cancelled() {
            return left;
        }
    }
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

/// The connections one system opened, as seen by its connector when each was made. Whether
/// each is still open is measured, never assumed: see [`SocketLedger::open_sockets`].
/// How long a recorded connection is kept though a socket table lacks it.
const RECENT: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct SocketLedger {
    /// (local, remote, when recorded).
    conns: Mutex<Vec<(SocketAddr, SocketAddr, std::time::Instant)>>,
    opened: AtomicU64,
}

impl SocketLedger {
    pub fn record(&self, local: SocketAddr, remote: SocketAddr) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.push((
                normalize(local),
                normalize(remote),
                std::time::Instant::now(),
            ));
        }
    }

    /// Connections opened since start.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// This system's sockets still open in `table`; connections gone from it are forgotten
    /// (a (local, remote) pair is unique while open, so a later reuse cannot be confused).
    /// A connection recorded in the last second is kept even when absent: `table` may have
    /// been read before it was made, and forgetting it would hide it from every later count.
    pub fn open_sockets(&self, table: &[OwnedSocket]) -> Vec<OwnedSocket> {
        let Ok(mut conns) = self.conns.lock() else {
            return Vec::new();
        };
        let mut open = Vec::new();
        conns.retain(|(l, r, recorded)| {
            let found = table.iter().find(|s| s.local == *l && s.remote == *r);
            if let Some(s) = found {
                open.push(s.clone());
            }
            found.is_some() || recorded.elapsed() < RECENT
        });
        open
    }

    /// Measure now; `None` without a socket table to measure against.
    pub fn live(&self) -> Option<usize> {
        process_tcp_sockets()
            .ok()
            .map(|table| self.open_sockets(&table).len())
    }

    /// Measure now.
    pub fn count_open(&self) -> usize {
        match process_tcp_sockets() {
            Ok(table) => self.open_sockets(&table).len(),
            // Without /proc we cannot see sockets; report what the connector recorded.
            Err(_) => self.conns.lock().map(|c| c.len()).unwrap_or(0),
        }
    }
}

/// Shut a socket down under whoever holds it: both directions, so the task owning it sees
/// EOF/errors and drops it. The fd itself stays owned (and is closed) by that task.
pub fn shutdown_socket(sock: &OwnedSocket) -> std::io::Result<()> {
    // SAFETY: shutdown(2) on an fd number changes no memory; at worst the fd was reused
    // for a non-socket (ENOTSOCK) or another socket, which is why callers re-read the
    // table immediately before and match (local, remote) first.
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

    #[test]
    fn sees_its_own_loopback_connection_and_forgets_it_when_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let ledger = SocketLedger::default();
        ledger.record(client.local_addr().unwrap(), client.peer_addr().unwrap());
        assert_eq!(ledger.count_open(), 1);
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
        drop(client);
        assert_eq!(ledger.count_open(), 0);
        assert_eq!(ledger.opened(), 1);
        drop(server);
    }

    #[test]
    fn shutdown_socket_makes_the_peer_see_eof() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let table = process_tcp_sockets().unwrap();
        let mine = table
            .iter()
            .find(|s| s.local == client.local_addr().unwrap())
            .unwrap();
        shutdown_socket(mine).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 0);
    }
}
