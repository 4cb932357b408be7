//! A connector layer that records each new connection's local and remote address in the
//! system's [`SocketLedger`], so the system can later find its own sockets in `/proc`.

use super::sockets::SocketLedger;
use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct RecordConnections {
    pub ledger: Arc<SocketLedger>,
}

impl<S> tower::Layer<S> for RecordConnections {
    type Service = Recorded<S>;
    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded { inner, ledger: self.ledger.clone() }
    }
}

#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
    ledger: Arc<SocketLedger>,
}

impl<S, R> tower::Service<R> for Recorded<S>
where
    S: tower::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.inner.call(req);
        let ledger = self.ledger.clone();
        Box::pin(async move {
            let conn = connecting.await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            if let Some(info) = extras.get::<HttpInfo>() {
                ledger.record(info.local_addr(), info.remote_addr());
            }
            Ok(conn)
        })
    }
}
