//! Mapping a request path onto the store, safely: the server is read-only
//! and never serves anything outside its store.
//!
//! The raw path is split on `/` first and each segment is percent-decoded
//! on its own, so an encoded slash (`%2F`) can never become a separator; a
//! segment that decodes to `.`, `..`, or anything holding `/`, `\` or NUL
//! is refused. The joined path is then resolved (`canonicalize`, which
//! follows symlinks) and must still lie under the store's own resolved
//! path: a symlink that points outside is refused like `..` is.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Why a path is not served. Both answer 404: a client learns nothing
/// about what lies outside the store.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// A segment that could climb out or smuggle a separator.
    BadSegment,
    /// Missing, unreadable, or resolving outside the store.
    NotInStore,
}

/// The store-relative segments of a raw (still encoded) path.
pub fn segments(raw: &str) -> Result<Vec<String>, Refused> {
    let mut out = Vec::new();
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode_str(seg).decode_utf8().map_err(|_| Refused::BadSegment)?;
        if decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
            return Err(Refused::BadSegment);
        }
        out.push(decoded.into_owned());
    }
    Ok(out)
}

/// The existing regular file or directory `raw` names under `store`
/// (already canonical), resolved. Anything else (a FIFO would block a
/// reader forever, a socket or device is nothing to browse) is refused.
pub fn resolve(store: &Path, raw: &str) -> Result<PathBuf, Refused> {
    let joined = segments(raw)?.iter().fold(store.to_path_buf(), |p, s| p.join(s));
    let real = joined.canonicalize().map_err(|_| Refused::NotInStore)?;
    let kind = std::fs::metadata(&real).map_err(|_| Refused::NotInStore)?.file_type();
    if real.starts_with(store) && (kind.is_file() || kind.is_dir()) { Ok(real) } else { Err(Refused::NotInStore) }
}

/// `path` (under `store`) as the URL path segments of its link, each
/// encoded.
pub fn link(store: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(store).unwrap_or(path);
    rel.components()
        .map(|c| percent_encoding::utf8_percent_encode(&c.as_os_str().to_string_lossy(), SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// What a path segment must encode: controls, space and the characters
/// with a meaning in a URL or HTML attribute.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'\'')
    .add(b'&');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_and_smuggled_separators_are_refused() {
        for raw in ["../etc", "a/../../etc", "%2e%2e/etc", "a/%2E%2E", "run%2F..%2F..%2Fetc", "a%5C..", "a%00b", "%ff"]
        {
            assert_eq!(segments(raw), Err(Refused::BadSegment), "{raw}");
        }
        assert_eq!(segments("/run/2026%20x/report.html").unwrap(), ["run", "2026 x", "report.html"]);
    }

    #[test]
    fn a_symlink_out_of_the_store_or_a_fifo_is_not_served() {
        let base = std::env::temp_dir().join(format!("faultline-paths-{}", std::process::id()));
        let (store, outside) = (base.join("store"), base.join("outside"));
        std::fs::create_dir_all(store.join("run")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "x").unwrap();
        std::fs::write(store.join("run/report.html"), "y").unwrap();
        std::os::unix::fs::symlink(&outside, store.join("out")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(store.join("run/fifo")).status().unwrap().success());
        let store = store.canonicalize().unwrap();
        let got = (resolve(&store, "out/secret"), resolve(&store, "run/report.html"), resolve(&store, "nope"));
        let fifo = resolve(&store, "run/fifo");
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(got.0, Err(Refused::NotInStore));
        assert_eq!(got.1, Ok(store.join("run/report.html")));
        assert_eq!(got.2, Err(Refused::NotInStore));
        assert_eq!(fifo, Err(Refused::NotInStore), "a FIFO would block the reader");
    }

    #[test]
    fn links_encode_each_segment() {
        assert_eq!(link(Path::new("/s"), Path::new("/s/a b/x#y")), "a%20b/x%23y");
    }
}
