//! `faultline serve` through the real binary on a store of its own: the
//! index lists runs and campaigns newest first with their verdicts and
//! filters them (rendered by headless Chromium), files and reports are
//! served, a run downloads as a zip that reads back, and no request
//! reaches outside the store: `..`, encoded dots and slashes, and a
//! symlink pointing out all get 404, and writes get 405.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::chromium::{self, element};

/// The server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn faultline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).output().expect("runs faultline")
}

fn serve(store: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--store", store.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts faultline serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("reads the address line");
    let port = line.trim().rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok());
    let port = port.unwrap_or_else(|| panic!("no address in {line:?}"));
    assert!(line.contains("http://127.0.0.1:"), "binds to loopback by default: {line}");
    Server { child, port }
}

/// One raw HTTP/1.1 request, path sent exactly as given (no client-side
/// normalisation): the status code and the body.
fn request(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = request_with_head(port, method, path);
    (status, body)
}

/// As [`request`], with the answer's head too.
fn request_with_head(port: u16, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects to the server");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reads the answer");
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
    let status = String::from_utf8_lossy(&raw[9..12]).parse().expect("a status code");
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    let body =
        if head.contains("transfer-encoding: chunked") { dechunk(&raw[head_end..]) } else { raw[head_end..].to_vec() };
    (status, head, body)
}

/// An HTTP/1.1 chunked body, joined.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16).expect("a hex size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
}

/// A store with a valid and an invalid run (generated histories, checked,
/// with reports) a day apart, a campaign, and a symlink out of the store.
fn make_store(root: &Path) -> PathBuf {
    let store = root.join("store");
    for (name, stamp, inject) in [("alpha", "20261201T100000Z", ""), ("beta", "20261202T100000Z", "lost-write:2")] {
        let dir = store.join(name).join(stamp);
        std::fs::create_dir_all(&dir).unwrap();
        let h = dir.join("history.jsonl");
        let mut args = vec!["gen-history", "--ops", "4000", "-o", h.to_str().unwrap()];
        if !inject.is_empty() {
            args.extend(["--inject", inject]);
        }
        assert!(faultline(&args).status.success());
        faultline(&["check", "--write", dir.to_str().unwrap()]);
        assert!(faultline(&["report", dir.to_str().unwrap()]).status.success());
    }
    let camp = store.join("campaigns/study/20261203T100000Z");
    std::fs::create_dir_all(&camp).unwrap();
    std::fs::write(camp.join("campaign.json"), r#"{"campaign":"study","exit_code":1,"cells":[]}"#).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/secret.txt"), "SECRET-OUTSIDE-THE-STORE").unwrap();
    std::os::unix::fs::symlink(root.join("outside"), store.join("alpha/escape")).unwrap();
    store
}

#[test]
fn the_index_lists_filters_and_renders() {
    let root = tempfile::tempdir().unwrap();
    let store = make_store(root.path());
    let server = serve(&store);
    let (status, body) = request(server.port, "GET", "/");
    assert_eq!(status, 200);
    let html = String::from_utf8(body).unwrap();
    let order: Vec<&str> =
        ["study", "beta", "alpha"].into_iter().filter(|n| html.contains(&format!("<td>{n}</td>"))).collect();
    assert_eq!(order.len(), 3, "{html}");
    let at = |n: &str| html.find(&format!("<td>{n}</td>")).unwrap();
    assert!(at("study") < at("beta") && at("beta") < at("alpha"), "newest first");
    assert!(html.contains("verdict invalid\">invalid") && html.contains("verdict valid\">valid"), "{html}");
    let (_, only_invalid) = request(server.port, "GET", "/?name=&verdict=invalid");
    let only_invalid = String::from_utf8(only_invalid).unwrap();
    assert!(only_invalid.contains("<td>beta</td>") && !only_invalid.contains("<td>alpha</td>"));
    let (_, by_name) = request(server.port, "GET", "/?name=alp");
    let by_name = String::from_utf8(by_name).unwrap();
    assert!(by_name.contains("<td>alpha</td>") && !by_name.contains("<td>beta</td>"));

    let shots = root.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let page = chromium::render(&format!("http://127.0.0.1:{}/", server.port), &shots, "serve-index", 700);
    let entries = element(&page.dom, "entries");
    assert_eq!(entries.matches("class=\"entry\"").count(), 3, "{entries}");
    assert!(entries.contains("/report.html\">report</a>"), "{entries}");
}

#[test]
fn files_reports_and_zips_are_served() {
    let root = tempfile::tempdir().unwrap();
    let store = make_store(root.path());
    let server = serve(&store);
    let (status, head, body) = request_with_head(server.port, "GET", "/files/beta/20261202T100000Z/report.html");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("id=\"lost-write\""));
    assert!(head.contains("content-type: text/html") && head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'"), "{head}");
    let (status, body) = request(server.port, "GET", "/files/beta/20261202T100000Z/history.jsonl");
    let on_disk = std::fs::read(store.join("beta/20261202T100000Z/history.jsonl")).unwrap();
    assert!(status == 200 && body == on_disk, "a file larger than one chunk streams whole");
    let (status, body) = request(server.port, "GET", "/files/beta/20261202T100000Z/");
    assert!(status == 200 && String::from_utf8_lossy(&body).contains("history.jsonl"), "a directory lists its files");
    let (status, body) = request(server.port, "GET", "/zip/beta/20261202T100000Z");
    assert_eq!(status, 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip that reads back");
    let mut history = String::new();
    zip.by_name("20261202T100000Z/history.jsonl").expect("holds the history").read_to_string(&mut history).unwrap();
    assert_eq!(history, std::fs::read_to_string(store.join("beta/20261202T100000Z/history.jsonl")).unwrap());
}

#[test]
fn nothing_outside_the_store_is_reachable_and_nothing_is_writable() {
    let root = tempfile::tempdir().unwrap();
    let store = make_store(root.path());
    let server = serve(&store);
    for path in [
        "/files/../outside/secret.txt",
        "/files/alpha/../../outside/secret.txt",
        "/files/%2e%2e/outside/secret.txt",
        "/files/alpha/%2E%2E/%2E%2E/outside/secret.txt",
        "/files/alpha%2F..%2F..%2Foutside%2Fsecret.txt",
        "/files/alpha/..%5C..%5Coutside/secret.txt",
        "/files/alpha/escape/secret.txt",
        "/files//etc/passwd",
        "/zip/alpha/escape",
        "/zip/..",
        "/zip/alpha",
        "/zip/",
    ] {
        let (status, body) = request(server.port, "GET", path);
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"), "{path} leaked the secret");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let (status, _) = request(server.port, method, "/files/alpha/20261201T100000Z/results.json");
        assert_eq!(status, 405, "{method}");
    }
    assert!(store.join("alpha/20261201T100000Z/results.json").exists());
}
