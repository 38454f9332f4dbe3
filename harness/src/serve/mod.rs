//! `faultline serve [--store DIR] [--port P]`: a small read-only web
//! server over a store, Jepsen's `lein run serve` made lighter. It lists
//! runs and campaigns (newest first, coloured by verdict, filterable by
//! name and verdict), serves each run's files and report, and offers a run
//! directory as a zip.
//!
//! It binds to 127.0.0.1 unless told otherwise, answers only GET and HEAD,
//! and never serves a path outside the store ([`paths`]).
//!
//! - [`paths`]: request paths onto the store, refusing escapes;
//! - [`index`]: the store's runs and campaigns;
//! - [`zip`]: a run directory as a zip.

pub mod index;
pub mod paths;
pub mod zip;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::exit::{EXIT_BAD_ARGS, EXIT_HARNESS};

/// Entries of one directory listing, at most.
const LISTING_MAX: usize = 2_000;
/// Zips built at once: each holds a run's compressed files in memory.
const ZIPS_AT_ONCE_MAX: usize = 1;
/// Bytes per chunk of a file streamed to a client.
const CHUNK_BYTES: usize = 1 << 16;
/// What a page may load: nothing from anywhere, its own inline styles and
/// SVG only. Reports need no more, and a hostile file in a store can do no
/// more.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:";

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The store to serve (as `faultline run --store`).
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// The port to listen on; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on. The default keeps the store to this
    /// machine; anything else exposes it to the network.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
}

struct Served {
    /// Canonical: every served path must resolve under it.
    store: PathBuf,
    templates: minijinja::Environment<'static>,
    zips: Semaphore,
}

pub fn main(args: ServeArgs) -> ExitCode {
    let store = match args.store.canonicalize() {
        Ok(s) if s.is_dir() => s,
        _ => {
            eprintln!("faultline serve: --store {}: no such directory", args.store.display());
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = runtime.context("starting the runtime").and_then(|rt| rt.block_on(serve(store, args.bind, args.port)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline serve: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

async fn serve(store: PathBuf, ip: std::net::IpAddr, port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .with_context(|| format!("listening on {ip}:{port}"))?;
    let addr = listener.local_addr()?;
    let mut templates = minijinja::Environment::new();
    templates.add_template("index.html", include_str!("templates/index.html"))?;
    templates.add_template("listing.html", include_str!("templates/listing.html"))?;
    println!("Serving {} at http://{addr}/", store.display());
    let state = Arc::new(Served { store, templates, zips: Semaphore::new(ZIPS_AT_ONCE_MAX) });
    let app = Router::new()
        .route("/", get(index_page))
        .route("/files", get(file_or_listing))
        .route("/files/", get(file_or_listing))
        .route("/files/{*path}", get(file_or_listing))
        .route("/zip/{*path}", get(zip_download))
        .layer(axum::middleware::map_response(harden))
        .with_state(state);
    axum::serve(listener, app).await.context("serving")
}

/// Every answer: no content sniffing, and pages that can load nothing.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    r
}

#[derive(Deserialize, Default)]
struct Filter {
    name: Option<String>,
    verdict: Option<String>,
}

#[derive(Serialize)]
struct IndexPage {
    store: String,
    entries: Vec<index::Entry>,
    total: usize,
    name: String,
    verdict: String,
    verdicts: Vec<&'static str>,
    style: &'static str,
}

async fn index_page(State(s): State<Arc<Served>>, Query(f): Query<Filter>) -> Response {
    let store = s.store.clone();
    let all = tokio::task::spawn_blocking(move || index::scan(&store)).await.unwrap_or_default();
    let total = all.len();
    let entries = index::filter(all, f.name.as_deref(), f.verdict.as_deref());
    let page = IndexPage {
        store: s.store.display().to_string(),
        entries,
        total,
        name: f.name.unwrap_or_default(),
        verdict: f.verdict.unwrap_or_default(),
        verdicts: vec!["valid", "invalid", "unknown", "ok", "mismatch", "undecided", "error", "no results"],
        style: include_str!("../report/templates/style.css"),
    };
    render(&s, "index.html", &page)
}

fn render(s: &Served, name: &str, ctx: &impl Serialize) -> Response {
    match s.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering {name}: {e}")).into_response(),
    }
}

/// The raw (still percent-encoded) path after `prefix`, from the request
/// URI itself: extractors decode, and an encoded slash must stay one.
fn raw_after<'a>(uri: &'a Uri, prefix: &str) -> &'a str {
    uri.path().strip_prefix(prefix).unwrap_or("")
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found in the store\n").into_response()
}

async fn file_or_listing(State(s): State<Arc<Served>>, uri: Uri) -> Response {
    let Ok(path) = paths::resolve(&s.store, raw_after(&uri, "/files")) else { return not_found() };
    if path.is_dir() {
        return listing(&s, &path);
    }
    match tokio::fs::File::open(&path).await {
        Ok(file) => ([(header::CONTENT_TYPE, content_type(&path))], Body::from_stream(chunks(file))).into_response(),
        Err(_) => not_found(),
    }
}

/// A file as a stream of chunks: a 900 MB history costs the server one
/// chunk of memory, not 900 MB.
fn chunks(file: tokio::fs::File) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("xml") => "application/xml",
        Some("jsonl" | "log" | "txt" | "toml") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[derive(Serialize)]
struct Listing {
    dir: String,
    link: String,
    parent: Option<String>,
    entries: Vec<(String, String, bool)>,
    is_run: bool,
    style: &'static str,
}

fn listing(s: &Served, dir: &Path) -> Response {
    let Ok(rd) = std::fs::read_dir(dir) else { return not_found() };
    let mut entries: Vec<(String, String, bool)> = rd
        .flatten()
        .take(LISTING_MAX)
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name().to_string_lossy().into_owned(), paths::link(&s.store, &e.path()), is_dir)
        })
        .collect();
    entries.sort();
    let page = Listing {
        dir: dir.strip_prefix(&s.store).unwrap_or(dir).display().to_string(),
        link: paths::link(&s.store, dir),
        parent: (dir != s.store).then(|| dir.parent().map(|p| paths::link(&s.store, p)).unwrap_or_default()),
        entries,
        is_run: dir.join(faultline_checker::HISTORY_FILE).exists(),
        style: include_str!("../report/templates/style.css"),
    };
    render(s, "listing.html", &page)
}

async fn zip_download(State(s): State<Arc<Served>>, uri: Uri) -> Response {
    let Ok(dir) = paths::resolve(&s.store, raw_after(&uri, "/zip")) else { return not_found() };
    // Only a run's directory: not the store, not a name's every run.
    if !dir.join(faultline_checker::HISTORY_FILE).is_file() && !dir.join(faultline_checker::TEST_FILE).is_file() {
        return not_found();
    }
    let Ok(_permit) = s.zips.acquire().await else { return not_found() };
    let top = dir.file_name().map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
    let name = dir
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(|| top.clone(), |p| format!("{}-{top}", p.to_string_lossy()));
    let built = tokio::task::spawn_blocking(move || zip::zip_dir(&dir, &top)).await;
    match built {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.zip\"")),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::PAYLOAD_TOO_LARGE, format!("{e:#}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
