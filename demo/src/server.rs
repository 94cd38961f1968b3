//! Our own accept loop instead of `axum::serve`, because the tests need two
//! things axum does not offer: taking a listener down (unbinding the port and
//! closing every open connection, idle keep-alive ones included) and closing
//! one connection without answering the request on it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    App,
    Control,
}

/// Put into every request's extensions so a handler can close its own
/// connection without a response.
#[derive(Clone, Debug)]
pub struct Connection {
    pub listener: ListenerKind,
    kill: Arc<Notify>,
}

impl Connection {
    /// Closes the connection and never returns, so no response is written.
    pub async fn close_without_response(&self) -> ! {
        self.kill.notify_one();
        std::future::pending::<()>().await;
        unreachable!("the connection task drops this future once notified")
    }
}

/// A bound, serving listener; dropping the stop sender also stops it.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Returns once the port is unbound and every connection is closed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// `recycle`: each change asks every open connection to finish its current
/// request and close, so the next request arrives on a fresh connection.
pub fn serve(
    listener: TcpListener,
    router: Router,
    kind: ListenerKind,
    recycle: Option<watch::Receiver<u64>>,
) -> Running {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, router, kind, recycle, stopped));
    Running { stop, task }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    kind: ListenerKind,
    recycle: Option<watch::Receiver<u64>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let mut recycle = recycle.clone();
                    if let Some(receiver) = &mut recycle {
                        receiver.mark_unchanged();
                    }
                    connections.spawn(serve_connection(stream, router.clone(), kind, recycle));
                }
                // Typically out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Aborting a connection task drops its socket, which closes it.
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    kind: ListenerKind,
    recycle: Option<watch::Receiver<u64>>,
) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let connection = Connection {
        listener: kind,
        kill: kill.clone(),
    };
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(connection.clone());
        router.clone().oneshot(request)
    });
    let http =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(http);
    let recycled = async {
        match recycle {
            Some(mut receiver) => receiver.changed().await.is_ok(),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(recycled);
    let mut recycling = false;
    loop {
        tokio::select! {
            _ = http.as_mut() => return,
            _ = kill.notified() => return,
            still_open = recycled.as_mut(), if !recycling => {
                recycling = true;
                if still_open {
                    // Idle connections close now, busy ones after this response.
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
