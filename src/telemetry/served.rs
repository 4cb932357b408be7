//! An HTTP endpoint the session owns (the metrics endpoint, the control endpoint): axum on a
//! [`RecordedListener`], so every connection it accepts is in its own ledger, and one close
//! for all of them (ARCHITECTURE.md, "Verified closing"): stop accepting, let requests in
//! progress finish until the grace deadline, cut what is left, and verify with `net::settle`.

use crate::lifecycle::{CloseOutcome, StepReport, SystemsClosed};
use crate::net::FORCE_BUDGET;
use crate::net::sockets::{ConnectionRecord, OwnedSocket, SocketLedger};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Floor for a graceful close when the systems used up the grace period (a request to one of
/// these endpoints takes about a millisecond).
const MIN_GRACE: Duration = Duration::from_millis(20);

/// Who is on the other end of a request (axum's `ConnectInfo` for our listener).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, RecordedListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, RecordedListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

pub(crate) struct Served {
    /// The step's name in the account and the report ("metrics endpoint").
    name: &'static str,
    addr: SocketAddr,
    /// Fired at the close: no new connections.
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Each connection accepted, recorded when accepted and when its fd closed.
    ledger: Arc<SocketLedger>,
}

impl Served {
    /// Bind `listen` and serve `app`. Port 0 takes any free port.
    pub async fn start(
        name: &'static str,
        listen: SocketAddr,
        app: axum::Router,
    ) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let ledger = Arc::new(SocketLedger::default());
        let listener = RecordedListener {
            listener,
            ledger: ledger.clone(),
        };
        let stop = CancellationToken::new();
        let graceful = stop.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
                .with_graceful_shutdown(graceful.cancelled_owned());
            if let Err(e) = serve.into_future().await {
                tracing::error!(error = %e, endpoint = name, "endpoint failed");
            }
        });
        tracing::info!(%addr, endpoint = name, "listening");
        Ok(Served {
            name,
            addr,
            stop,
            task,
            ledger,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener and every connection open now.
    pub fn sockets_open(&self) -> u32 {
        self.ledger.open_count() as u32 + 1
    }

    /// Close: no new connections, requests in progress finish until the grace deadline (at
    /// least [`MIN_GRACE`]), then whatever is left is cut and its sockets shut. Ends once the
    /// endpoint's sockets are measured gone. `started` and `sockets_before` are the step's,
    /// taken when it began (an endpoint may do something of its own first).
    pub async fn close(
        mut self,
        closed: &SystemsClosed,
        started: Instant,
        sockets_before: u32,
    ) -> StepReport {
        self.stop.cancel();
        let graceful_until = closed.deadline.max(tokio::time::Instant::now() + MIN_GRACE);
        let mut forced = false;
        tokio::select! {
            _ = &mut self.task => {}
            _ = tokio::time::sleep_until(graceful_until) => forced = true,
            _ = closed.force.cancelled() => forced = true,
        }
        if forced {
            self.task.abort();
            // Awaiting an aborted task returns once it is dropped: the listener is closed.
            let _ = (&mut self.task).await;
        }
        // Connections are served by tasks of their own: what is left is shut under them.
        let now = tokio::time::Instant::now();
        let port = self.addr.port();
        let settled = crate::net::settle(
            &self.ledger,
            Some(&|s: &OwnedSocket| s.local.port() == port),
            now,
            now + FORCE_BUDGET,
            &closed.force,
        )
        .await;
        forced |= settled.shut_down;
        let (outcome, error) = match (settled.left.len(), forced) {
            (0, _) if settled.unverified.is_some() => (CloseOutcome::Unverified, None),
            (0, false) => (CloseOutcome::Closed, None),
            (0, true) => (CloseOutcome::Forced, None),
            (n, _) => (
                CloseOutcome::Error,
                Some(format!(
                    "{} still open after force-close: {}",
                    crate::lifecycle::counted(n, "socket"),
                    crate::net::sockets::named(&settled.left)
                )),
            ),
        };
        tracing::info!(addr = %self.addr, endpoint = self.name, outcome = %outcome.name(), "closed");
        StepReport {
            name: self.name.to_string(),
            outcome,
            close_ms: started.elapsed().as_secs_f64() * 1e3,
            sockets_before,
            error,
            cancelled: 0,
            verified: settled.unverified.is_none(),
            unverified_reason: settled.unverified,
            earlier: None,
            steps: Vec::new(),
        }
    }
}

/// A listener whose accepted connections are recorded in a ledger, as the engine's connector
/// (`net::transport`) records the ones it makes: a server's sockets get the same two
/// witnesses as a client's. Here, beside axum, its only user (the engine has no server).
pub(crate) struct RecordedListener {
    pub listener: tokio::net::TcpListener,
    pub ledger: Arc<SocketLedger>,
}

/// An accepted connection: the fd first, then its record (dropped after the fd closes).
pub(crate) struct RecordedTcp {
    io: TcpStream,
    _record: ConnectionRecord,
}

impl tokio::io::AsyncRead for RecordedTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for RecordedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for RecordedListener {
    type Io = RecordedTcp;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (RecordedTcp, std::net::SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((io, peer)) => {
                    let Ok(local) = io.local_addr() else { continue };
                    let record =
                        self.ledger
                            .record(std::os::fd::AsRawFd::as_raw_fd(&io), local, peer);
                    return (
                        RecordedTcp {
                            io,
                            _record: record,
                        },
                        peer,
                    );
                }
                // Out of fds and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}
