//! Starts the built server and talks HTTP/1.1 to it over plain sockets, so
//! the tests control connection reuse exactly (keep-alive matters for the
//! `down` and `drop` faults).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    pub app: SocketAddr,
    pub control: SocketAddr,
    root: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts on free ports with small site and product directories.
    pub fn start_with(extra_arguments: &[&str]) -> Server {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "outbox-demo-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let site = root.join("site");
        let outbox = root.join("outbox");
        write_file(&site.join("index.html"), b"<h1>site</h1>");
        write_file(&site.join("app.js"), b"console.log(1)");
        write_file(&site.join("nested/index.html"), b"<h1>nested</h1>");
        write_file(&outbox.join("outbox-sw.js"), b"self.Outbox = {}");
        write_file(&outbox.join("outbox.d.ts"), b"export {}");
        write_file(&outbox.join("module.wasm"), b"\0asm");
        write_file(&root.join("secret.txt"), b"secret");

        let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-demo"))
            .args(["--port", "0", "--control-port", "0", "--site"])
            .arg(&site)
            .arg("--outbox")
            .arg(&outbox)
            .args(extra_arguments)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn outbox-demo");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let address = |prefix: &str| -> SocketAddr {
            let start = line.find(prefix).expect("address in line") + prefix.len();
            line[start..]
                .split_whitespace()
                .next()
                .expect("address")
                .parse()
                .expect("socket address")
        };
        let app = address("app=http://");
        let control = address("control=http://");
        assert!(
            line.starts_with("listening app=http://127.0.0.1:"),
            "{line}"
        );
        Server {
            child,
            app,
            control,
            root,
        }
    }

    pub fn app(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(self.app, method, path, headers, body).expect("app request")
    }

    pub fn json(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.app(method, path, &all, body.as_bytes())
    }

    pub fn control(&self, action: &str, body: &str) -> Value {
        let method = if matches!(action, "stats" | "entities" | "received") {
            "GET"
        } else {
            "POST"
        };
        let reply = request(
            self.control,
            method,
            &format!("/control/{action}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .expect("control request");
        assert_eq!(reply.status, 200, "control {action}: {}", reply.text());
        reply.json()
    }

    pub fn stats(&self) -> Value {
        self.control("stats", "")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn write_file(path: &Path, contents: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create directory");
    }
    std::fs::write(path, contents).expect("write file");
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// One request on a fresh connection.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    let mut client = KeepAlive::connect(address)?;
    client.send(method, path, headers, body)
}

/// A connection reused for several requests, like a browser's.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn connect(address: SocketAddr) -> io::Result<KeepAlive> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(KeepAlive {
            reader: BufReader::new(stream),
        })
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        read_reply(&mut self.reader, method == "HEAD")
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end().to_owned())
}

fn read_reply(reader: &mut BufReader<TcpStream>, head_only: bool) -> io::Result<Reply> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, status_line.clone()))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 {
        return Ok(reply);
    }
    if let Some(length) = reply.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?;
        reply.body = vec![0; length];
        reader.read_exact(&mut reply.body)?;
    } else if reply
        .header("transfer-encoding")
        .is_some_and(|encoding| encoding.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size_line = read_line(reader)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
            if size == 0 {
                read_line(reader)?;
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            reply.body.extend_from_slice(&chunk);
            read_line(reader)?;
        }
    } else {
        reader.read_to_end(&mut reply.body)?;
    }
    Ok(reply)
}
