//! Static files for the site and the built product.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;

fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    // `.d.ts` first: a bare `.ts` guess would say MPEG transport stream.
    if name.ends_with(".d.ts") || name.ends_with(".ts") {
        return "text/plain; charset=utf-8";
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, extension)| extension)
        .unwrap_or("");
    match extension {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "css" => "text/css; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Maps the part of the URL path below the root to a file path, refusing
/// anything that could climb out of the root.
fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(relative).decode_utf8().ok()?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            _ if segment.contains('\\') || segment.contains('\0') => return None,
            _ => path.push(segment),
        }
    }
    Some(path)
}

/// `relative` is the URL path below `root`; `request_path` is the full URL
/// path, used to redirect directories to their slash form so relative links
/// in their index.html resolve.
pub async fn serve(root: &Path, relative: &str, request_path: &str, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let Some(mut path) = resolve(root, relative) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    if tokio::fs::metadata(&path)
        .await
        .is_ok_and(|metadata| metadata.is_dir())
    {
        if !request_path.ends_with('/') {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
            if let Ok(location) = HeaderValue::from_str(&format!("{request_path}/")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return response;
        }
        path.push("index.html");
    }
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    // Always revalidate: the product and site change between test runs.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_climb_out_of_the_root() {
        let root = Path::new("/site");
        assert_eq!(resolve(root, "a/b.js"), Some(PathBuf::from("/site/a/b.js")));
        assert_eq!(resolve(root, "a/../../etc/passwd"), None);
        assert_eq!(resolve(root, "%2e%2e/secret"), None);
    }

    #[test]
    fn types_follow_extensions() {
        assert_eq!(
            content_type(Path::new("x/outbox.d.ts")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.WASM")), "application/wasm");
        assert_eq!(
            content_type(Path::new("a.mjs")),
            "text/javascript; charset=utf-8"
        );
    }
}
