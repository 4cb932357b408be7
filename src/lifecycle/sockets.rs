//! Measuring TCP sockets for real: the process's own sockets are the `socket:[inode]` links
//! under `/proc/self/fd`, matched against the rows of `/proc/self/net/tcp{,6}`. Rows with
//! inode 0 (TIME_WAIT, orphans) belong to no process and are not counted.

use std::collections::HashMap;
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

/// Every TCP socket this process holds, with its fd.
pub fn process_tcp_sockets() -> std::io::Result<Vec<OwnedSocket>> {
    let me = procfs::process::Process::myself().map_err(proc_err)?;
    let mut fd_of_inode = HashMap::new();
    for fd in me.fd().map_err(proc_err)? {
        // An fd can close between listing and reading it: that is not an error.
        let Ok(fd) = fd else { continue };
        if let procfs::process::FDTarget::Socket(inode) = fd.target {
            fd_of_inode.insert(inode, fd.fd);
        }
    }
    let mut rows = procfs::net::tcp().map_err(proc_err)?;
    // A kernel without IPv6 has no tcp6 table.
    rows.extend(procfs::net::tcp6().unwrap_or_default());
    Ok(rows
        .into_iter()
        .filter(|r| r.inode != 0)
        .filter_map(|r| {
            let fd = *fd_of_inode.get(&r.inode)?;
            Some(OwnedSocket {
                fd,
                local: normalize(r.local_address),
                remote: normalize(r.remote_address),
                state: format!("{:?}", r.state),
            })
        })
        .collect())
}

/// Count of this process's TCP sockets, leaving out those whose local port is one of
/// `excluded_ports` (the in-process sandbox's listeners and server-side connections).
pub fn count_process_sockets(excluded_ports: &[u16]) -> std::io::Result<usize> {
    Ok(process_tcp_sockets()?
        .iter()
        .filter(|s| !excluded_ports.contains(&s.local.port()))
        .count())
}

fn proc_err(e: procfs::ProcError) -> std::io::Error {
    std::io::Error::other(format!("reading /proc: {e}"))
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
#[derive(Debug, Default)]
pub struct SocketLedger {
    conns: Mutex<Vec<(SocketAddr, SocketAddr)>>,
    opened: AtomicU64,
}

impl SocketLedger {
    pub fn record(&self, local: SocketAddr, remote: SocketAddr) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.push((normalize(local), normalize(remote)));
        }
    }

    /// Connections opened since start.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// This system's sockets still open in `table`; connections gone from it are forgotten
    /// (a (local, remote) pair is unique while open, so a later reuse cannot be confused).
    pub fn open_sockets(&self, table: &[OwnedSocket]) -> Vec<OwnedSocket> {
        let Ok(mut conns) = self.conns.lock() else {
            return Vec::new();
        };
        let mut open = Vec::new();
        conns.retain(|(l, r)| {
            let found = table.iter().find(|s| s.local == *l && s.remote == *r);
            if let Some(s) = found {
                open.push(s.clone());
            }
            found.is_some()
        });
        open
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
        let all = count_process_sockets(&[]).unwrap();
        let without_server = count_process_sockets(&[addr.port()]).unwrap();
        // The listener and the accepted socket both have the server's local port.
        assert_eq!(all - without_server, 2);
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
