//! `cargo xtask demo`: builds everything, then serves the concept-map demo
//! (`demo/site`) with the reference server until Ctrl-C.
//!
//! `cargo xtask screenshots`: runs the demo's end-to-end test, which also
//! writes the README's screenshot, `docs/demo.png`.

use crate::build::{build, node_for_browser_runs, DEMO_SERVER, DIST_DIRECTORY};
use crate::engines::Engine;
use crate::prerequisites;
use crate::process::{say, workspace_root, CommandLine};
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ExitCode, ExitStatus};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const SITE_DIRECTORY: &str = "demo/site";
const DEFAULT_PORT: u16 = 8080;
const DEMO_TEST: &str = "tests/e2e/demo.test.mjs";
const DOCS_SCREENSHOT: &str = "docs/demo.png";
/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads `--port <port>`; the control port is the next one, so it must
/// exist too.
pub fn parse_port(arguments: &[String]) -> Result<u16, String> {
    match arguments {
        [] => Ok(DEFAULT_PORT),
        [flag, port] if flag == "--port" => match port.parse::<u16>() {
            Ok(port) if port > 0 && port < u16::MAX => Ok(port),
            _ => Err(format!(
                "--port must be a number from 1 to {}, not `{port}`",
                u16::MAX - 1
            )),
        },
        _ => Err("usage: cargo xtask demo [--port <port>]".to_string()),
    }
}

pub fn demo(port: u16) -> Result<ExitCode, String> {
    let started = Instant::now();
    let control_port = port + 1;
    // Before building: a build replaces dist/outbox/ under a running demo.
    for (what, number) in [("port", port), ("control port", control_port)] {
        ensure_free(what, number)?;
    }
    let tools = prerequisites::ensure_build_tools()?;
    build(&tools)?;
    if !workspace_root()
        .join(SITE_DIRECTORY)
        .join("index.html")
        .is_file()
    {
        return Err(format!(
            "{SITE_DIRECTORY}/index.html is missing: the demo site is part of the repository"
        ));
    }
    let server =
        CommandLine::new(workspace_root().join(DEMO_SERVER).to_string_lossy()).arguments([
            "--port".to_string(),
            port.to_string(),
            "--control-port".to_string(),
            control_port.to_string(),
            "--site".to_string(),
            SITE_DIRECTORY.to_string(),
            "--outbox".to_string(),
            DIST_DIRECTORY.to_string(),
        ]);
    say(format!("starting {}", server.display()));
    let mut running = server.spawn()?;
    ignore_interrupts();
    if let Some(status) = wait_until_listening(&mut running, port)? {
        eprintln!("xtask: the demo server exited before it listened ({status})");
        return Ok(ExitCode::FAILURE);
    }
    say(format!("ready in {:.0} s", started.elapsed().as_secs_f64()));
    println!(
        "
sw-outbox demo: http://127.0.0.1:{port}/

Try first: press \"Take server down\", add two concepts and connect them. They appear
dashed, the badge counts 3 pending and the queue at the bottom lists them. Reload the
page if you like: they are still there. Press \"Bring server up\" and watch them go out.
Then make a conflict as the page's \"Try it\" strip explains, and settle it in the dialog.

The control API the strip uses listens on http://127.0.0.1:{control_port}/control/ (see
demo/README.md). Stop with Ctrl-C.
"
    );
    let status = running
        .wait()
        .map_err(|error| format!("waiting for the demo server failed: {error}"))?;
    if status.success() || interrupted(status) {
        say("demo stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: the demo server exited ({status})");
        Ok(ExitCode::FAILURE)
    }
}

/// Fails early, with a way out, when a port is taken (for instance by a
/// demo still running in another terminal).
fn ensure_free(what: &str, port: u16) -> Result<(), String> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AddrInUse => Err(format!(
            "the {what} 127.0.0.1:{port} is in use (is another `cargo xtask demo` running?); \
             stop it or pick other ports with --port <port>"
        )),
        Err(error) => Err(format!("cannot listen on 127.0.0.1:{port}: {error}")),
    }
}

/// Waits until the app port accepts connections; gives the server's exit
/// status instead if it stops first.
fn wait_until_listening(server: &mut Child, port: u16) -> Result<Option<ExitStatus>, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = server
            .try_wait()
            .map_err(|error| format!("waiting for the demo server failed: {error}"))?
        {
            return Ok(Some(status));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            return Err(format!(
                "the demo server did not listen on {address} within {} s",
                START_TIMEOUT.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Builds, then runs the demo's end-to-end test with `OUTBOX_DOCS_SCREENSHOT`
/// set, so that it also writes `docs/demo.png`.
pub fn screenshots() -> Result<ExitCode, String> {
    let tools = prerequisites::ensure_build_tools()?;
    prerequisites::ensure_browsers(&[Engine::Chromium])?;
    build(&tools)?;
    let root = workspace_root();
    let screenshot = root.join(DOCS_SCREENSHOT);
    if let Some(directory) = screenshot.parent() {
        fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    }
    let started = SystemTime::now();
    let test = node_for_browser_runs()
        .arguments(["--test", DEMO_TEST])
        .environment("OUTBOX_DOCS_SCREENSHOT", screenshot.to_string_lossy());
    say(format!("running {}", test.display()));
    test.run()?;
    let written = fs::metadata(&screenshot)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|modified| modified >= started);
    if !written {
        return Err(format!(
            "{DEMO_TEST} passed but did not write {DOCS_SCREENSHOT}"
        ));
    }
    say(format!(
        "wrote {DOCS_SCREENSHOT}; the test's other screenshots are in target/screenshots/"
    ));
    Ok(ExitCode::SUCCESS)
}

/// SIGINT's number on Linux and macOS.
#[cfg(unix)]
const INTERRUPT_SIGNAL: i32 = 2;

/// Ctrl-C reaches the server directly, as it shares the terminal's process
/// group. xtask itself ignores it (only after starting the server, which
/// would otherwise inherit that), so it keeps waiting while the server shuts
/// down and the shell prompt does not return early.
#[cfg(unix)]
fn ignore_interrupts() {
    const SIG_IGN: usize = 1;
    extern "C" {
        fn signal(signal_number: i32, handler: usize) -> usize;
    }
    // SAFETY: installs libc's own "ignore" disposition; no handler code runs.
    unsafe {
        signal(INTERRUPT_SIGNAL, SIG_IGN);
    }
}

#[cfg(not(unix))]
fn ignore_interrupts() {}

#[cfg(unix)]
fn interrupted(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(INTERRUPT_SIGNAL)
}

#[cfg(not(unix))]
fn interrupted(_status: std::process::ExitStatus) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    #[test]
    fn reads_the_port() {
        assert_eq!(parse_port(&[]), Ok(8080));
        assert_eq!(
            parse_port(&["--port".to_string(), "9000".to_string()]),
            Ok(9000)
        );
        assert!(parse_port(&["--port".to_string(), "65535".to_string()]).is_err());
        assert!(parse_port(&["--port".to_string(), "http".to_string()]).is_err());
        assert!(parse_port(&["9000".to_string()]).is_err());
    }
}
