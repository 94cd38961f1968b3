//! Reference server for sw-outbox: a versioned JSON resource API with ETags,
//! idempotency-key deduplication and fault injection, plus the demo site.
//!
//! `outbox-demo --port 8080 --control-port 8081 --site DIR --outbox DIR [--delay-ms 0]`

mod api;
mod control;
mod server;
mod state;
mod static_files;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use server::{Connection, ListenerKind, Running};
use state::World;

/// Uploads can be large; the outbox enforces its own limit before this.
const BODY_LIMIT_BYTES: usize = 256 * 1024 * 1024;

pub struct Shared {
    world: Mutex<World>,
    site: PathBuf,
    outbox: PathBuf,
    app_address: SocketAddr,
    control_address: SocketAddr,
    app_listener: tokio::sync::Mutex<Option<Running>>,
    is_down: AtomicBool,
    recycle_app_connections: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// A panic while holding the lock leaves plain data behind, still usable.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Unbinds the app port and closes all its connections.
    pub async fn down(&self) {
        let mut listener = self.app_listener.lock().await;
        if let Some(running) = listener.take() {
            self.is_down.store(true, Ordering::SeqCst);
            running.stop().await;
        }
    }

    /// Binds the same app port again; nothing to do when already up.
    pub async fn up(self: &Arc<Self>) -> std::io::Result<()> {
        let mut listener = self.app_listener.lock().await;
        if listener.is_none() {
            let bound = server::bind(self.app_address).await?;
            *listener = Some(server::serve(
                bound,
                router(self.clone()),
                ListenerKind::App,
                Some(self.recycle_app_connections.subscribe()),
            ));
            self.is_down.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Closes idle app connections and lets busy ones close after their
    /// response. Browsers silently resend a request whose reused keep-alive
    /// connection closes before any response, so a dropped request must
    /// arrive on a fresh connection for the page to see the network error.
    pub fn recycle_app_connections(&self) {
        self.recycle_app_connections
            .send_modify(|generation| *generation += 1);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// One entry point with prefix dispatch: simpler than route patterns for
/// "everything else is a static file", and it lets the control listener
/// refuse non-control paths.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let on_app_port = request
        .extensions()
        .get::<Connection>()
        .is_none_or(|connection| connection.listener == ListenerKind::App);
    let mut response = route(&shared, request).await;
    // While a drop is armed no app connection may be reused, for the same
    // reason as in `recycle_app_connections`.
    if on_app_port && !shared.world().drop_rules.is_empty() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn route(shared: &Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<Connection>().cloned();
    let on_control_port =
        connection.as_ref().map(|connection| connection.listener) == Some(ListenerKind::Control);
    let path = parts.uri.path().to_owned();
    let body = match axum::body::to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return api::into_response(api::error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
            ))
        }
    };

    if let Some(action) = path.strip_prefix("/control/") {
        return control::handle(shared, connection.as_ref(), &parts.method, action, body).await;
    }
    if on_control_port {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    if path == "/api" || path.starts_with("/api/") {
        return api::handle(shared, connection, parts.method, path, parts.headers, body).await;
    }
    if path == "/outbox" || path.starts_with("/outbox/") {
        let relative = path.strip_prefix("/outbox").unwrap_or("");
        return static_files::serve(&shared.outbox, relative, &path, &parts.method).await;
    }
    static_files::serve(&shared.site, &path, &path, &parts.method).await
}

struct Options {
    port: u16,
    control_port: u16,
    site: PathBuf,
    outbox: PathBuf,
    delay_ms: u64,
}

const USAGE: &str =
    "usage: outbox-demo --port 8080 --control-port 8081 --site DIR --outbox DIR [--delay-ms 0]";

fn parse_options(arguments: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut port = None;
    let mut control_port = None;
    let mut site = None;
    let mut outbox = None;
    let mut delay_ms = 0;
    let mut arguments = arguments.peekable();
    while let Some(argument) = arguments.next() {
        // Both `--name value` and `--name=value`.
        let (name, inline_value) = match argument.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (argument.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(USAGE.into());
        }
        let value = match inline_value.or_else(|| arguments.next()) {
            Some(value) => value,
            None => return Err(format!("{name} needs a value\n{USAGE}")),
        };
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {value}"))
        };
        let port_number = |value: &str| {
            value
                .parse::<u16>()
                .map_err(|_| format!("{name}: not a port: {value}"))
        };
        match name.as_str() {
            "--port" => port = Some(port_number(&value)?),
            "--control-port" => control_port = Some(port_number(&value)?),
            "--site" => site = Some(PathBuf::from(value)),
            "--outbox" => outbox = Some(PathBuf::from(value)),
            "--delay-ms" => delay_ms = number(&value)?,
            _ => return Err(format!("unknown option {name}\n{USAGE}")),
        }
    }
    Ok(Options {
        port: port.ok_or(format!("--port is required\n{USAGE}"))?,
        control_port: control_port.ok_or(format!("--control-port is required\n{USAGE}"))?,
        site: site.ok_or(format!("--site is required\n{USAGE}"))?,
        outbox: outbox.ok_or(format!("--outbox is required\n{USAGE}"))?,
        delay_ms,
    })
}

async fn run(options: Options) -> std::io::Result<()> {
    let app_listener = server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port))).await?;
    let control_listener = server::bind(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        options.control_port,
    )))
    .await?;
    // The real port, so `--port 0` rebinds the same one after `down`.
    let app_address = app_listener.local_addr()?;
    let control_address = control_listener.local_addr()?;
    let shared = Arc::new(Shared {
        world: Mutex::new(World::new(options.delay_ms)),
        site: options.site,
        outbox: options.outbox,
        app_address,
        control_address,
        app_listener: tokio::sync::Mutex::new(None),
        is_down: AtomicBool::new(false),
        recycle_app_connections: tokio::sync::watch::Sender::new(0),
    });
    *shared.app_listener.lock().await = Some(server::serve(
        app_listener,
        router(shared.clone()),
        ListenerKind::App,
        Some(shared.recycle_app_connections.subscribe()),
    ));
    let _control = server::serve(
        control_listener,
        router(shared.clone()),
        ListenerKind::Control,
        None,
    );

    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "listening app=http://{app_address} control=http://{control_address}"
    )?;
    stdout.flush()?;

    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("outbox-demo: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outbox-demo: {error}");
            ExitCode::FAILURE
        }
    }
}
