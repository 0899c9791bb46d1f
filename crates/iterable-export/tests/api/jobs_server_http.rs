//! The fake's HTTP plumbing (one request per connection, `Connection: close`) and its file host,
//! which serves each job's files and counts every `Api-Key` that reaches it.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Script, State, file_body};

pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(super) async fn read_request(socket: &mut TcpStream) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

pub(super) async fn respond(
    socket: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body).await?;
    socket.shutdown().await
}

pub(super) fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            url::form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    })
}
pub(super) async fn serve_file(mut socket: TcpStream, state: &Mutex<State>, script: &Script) -> std::io::Result<()> {
    let request = read_request(&mut socket).await?;
    let path = request.target.split('?').next().unwrap_or_default().to_owned();
    let mut parts = path.trim_start_matches("/bucket/").split('/');
    let id: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
    let index: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(usize::MAX);
    enum Reply {
        Expired,
        Broken,
        Cut(Vec<u8>),
        Full(Vec<u8>),
        Missing,
    }
    let reply = {
        let mut s = state.lock().expect("fake state");
        if request.header("Api-Key").is_some() {
            s.seen.keys_at_file_host += 1;
        }
        s.seen.downloads.push((id, index));
        if s.jobs.get(&id).is_some_and(|job| !job.ended) {
            s.seen.downloads_while_running += 1;
        }
        s.downloads_seen.send_replace(s.seen.downloads.len());
        match s.jobs.get(&id).map(|j| j.window_start.clone()) {
            None => Reply::Missing,
            Some(window_start) => {
                let body = file_body(script, &window_start, index);
                if let Some((broken, count)) = script.broken_file
                    && broken == index
                    && s.broken_served < count
                {
                    s.broken_served += 1;
                    Reply::Broken
                } else if script.expire_files.contains(&index) && !s.expired_once.contains(&(id, index)) {
                    s.expired_once.push((id, index));
                    Reply::Expired
                } else if script.cut_files.contains(&index) && !s.cut_once.contains(&(id, index)) {
                    s.cut_once.push((id, index));
                    Reply::Cut(body)
                } else {
                    Reply::Full(body)
                }
            }
        }
    };
    match reply {
        Reply::Missing => respond(&mut socket, "404 Not Found", "text/plain", b"no such key").await,
        Reply::Expired => {
            let xml = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
            respond(&mut socket, "403 Forbidden", "application/xml", xml).await
        }
        Reply::Broken => {
            respond(
                &mut socket,
                "500 Internal Server Error",
                "text/plain",
                b"internal error",
            )
            .await
        }
        Reply::Full(body) => respond(&mut socket, "200 OK", "application/x-json-stream", &body).await,
        Reply::Cut(body) => {
            // Close-delimited, stopping in the middle of the second record.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-json-stream\r\nConnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await?;
            let first_end = body.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
            let cut = (first_end + 5).min(body.len().saturating_sub(1));
            socket.write_all(&body[..cut]).await?;
            socket.shutdown().await
        }
    }
}
