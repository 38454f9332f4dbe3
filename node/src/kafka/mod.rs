//! The Kafka-protocol listener (`PLAINTEXT://` in `listeners`): Kafka's
//! binary protocol over TCP, beside the HTTP API, into the same broker.
//!
//! Frames are a 4-byte big-endian length and a request; the header and body
//! codecs are the `kafka-protocol` crate's, none are written here. Requests
//! on one connection are answered one at a time, in order, as Kafka does
//! (it mutes a connection until its response is sent); connections are
//! served concurrently. A frame larger than `socket.request.max.bytes`, an
//! unknown API key or an undecodable header cannot be answered in a form the
//! client parses, so the connection is closed; other connections go on.
//! [`api`] holds the handlers and the table of supported versions.

pub mod admin;
pub mod api;
pub mod fetch;
pub mod groups;
pub mod membership;
pub mod produce;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::groups::Groups;

/// What the handlers act on: the broker, and the group offsets store the
/// HTTP API shares.
pub struct Node {
    pub broker: Arc<Broker>,
    pub groups: Arc<Groups>,
}

/// Accepts connections until `stop` is set; each is served on its own task.
pub async fn serve(listener: TcpListener, node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let node = node.clone();
                    tokio::spawn(async move {
                        if let Err(why) = connection(stream, &node).await {
                            tracing::debug!(%peer, why, "kafka connection closed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "kafka listener: accept failed"),
            },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Serves one connection: request, response, in order, until the client
/// closes it or sends something that cannot be answered.
async fn connection(mut stream: TcpStream, node: &Node) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let max = node.broker.config.socket_request_max_bytes;
    // Bounded by the client: each round reads one frame or ends.
    loop {
        let len = match stream.read_i32().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("reading a frame length: {e}")),
        };
        let len = usize::try_from(len).map_err(|_| format!("negative frame length {len}"))?;
        if len < 4 || len > max {
            return Err(format!("frame of {len} bytes (socket.request.max.bytes is {max})"));
        }
        let mut frame = vec![0u8; len];
        stream.read_exact(&mut frame).await.map_err(|e| format!("reading a frame: {e}"))?;
        // acks=0 produce requests get no response, as in Kafka.
        if let Some(response) = answer(Bytes::from(frame), node).await? {
            stream.write_all(&response).await.map_err(|e| format!("writing a response: {e}"))?;
        }
    }
}

/// The response frame (length included) to one request frame, if it gets one.
async fn answer(mut frame: Bytes, node: &Node) -> Result<Option<Bytes>, String> {
    let key = ApiKey::try_from(frame.clone().get_i16()).map_err(|_| "unknown API key".to_string())?;
    let version = {
        let mut peek = frame.clone();
        peek.advance(2);
        peek.get_i16()
    };
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| format!("undecodable {key:?} v{version} header: {e}"))?;
    let Some(reply) = api::handle(key, version, frame, node).await? else { return Ok(None) };
    // An unsupported version is answered in the oldest form the client
    // reads (ApiVersions v0), so it can retry.
    let response_header = ResponseHeader::default().with_correlation_id(header.correlation_id);
    let mut out = BytesMut::new();
    out.put_i32(0);
    response_header
        .encode(&mut out, key.response_header_version(reply.version))
        .map_err(|e| format!("encoding a {key:?} response header: {e}"))?;
    out.extend_from_slice(&reply.body);
    let len = i32::try_from(out.len() - 4).map_err(|_| "response too large".to_string())?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(Some(out.freeze()))
}

/// A response body and the version it is encoded in.
pub struct Reply {
    pub version: i16,
    pub body: Bytes,
}

impl Reply {
    pub fn encode<M: Encodable>(message: &M, version: i16) -> Result<Reply, String> {
        let mut body = BytesMut::new();
        message.encode(&mut body, version).map_err(|e| format!("encoding a v{version} response: {e}"))?;
        Ok(Reply { version, body: body.freeze() })
    }
}
