//! Raft RPCs over HTTP (placeholder).
