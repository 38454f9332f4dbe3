//! A blocking wait for a node's `GET /health` to answer 200, for code
//! outside an async runtime (start-up of tests, benchmarks and the demo).
//! Plain `std::net`, so it needs no runtime and no HTTP client.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Bound on one probe's connect and read.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// The status code of one `GET /health` to `base_url` (`http://host:port`),
/// or `None` when nothing answered.
pub fn health_status(base_url: &str) -> Option<u16> {
    let addr = base_url.strip_prefix("http://")?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    write!(stream, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `GET /health` answers 200 (the broker registered with its
/// controller and serves), or `timeout` passes. Returns whether it did.
pub fn wait_healthy_blocking(base_url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // Bounded by the deadline.
    loop {
        if health_status(base_url) == Some(200) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}
