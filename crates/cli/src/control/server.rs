//! The TCP control server: newline-delimited JSON on its own threads.
//!
//! One thread accepts (non-blocking, polled every 50 ms); each connection is served on a
//! thread of its own, at most [`MAX_CONNECTIONS`] at once. A request goes to the play loop
//! over the bounded job queue and its reply comes back over a channel of its own; the server
//! never touches the session or the engine.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::protocol::{self, Reply, MAX_FRAME};
use super::{Job, Replier, Worker};

/// Connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 8;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// How long a reply may take (an `eval` may run for up to 5 s of loading).
const REPLY_WITHIN: Duration = Duration::from_secs(15);

/// A running control server.
pub struct Server {
    addr: SocketAddr,
    _worker: Worker,
}

impl Server {
    /// Serves `listener`, sending requests to `jobs`; `token`, when given, must be in every
    /// request.
    ///
    /// # Errors
    ///
    /// When the listener cannot be made non-blocking or the thread cannot start.
    pub fn start(
        listener: TcpListener,
        token: Option<String>,
        jobs: SyncSender<Job>,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let token: Option<Arc<str>> = token.map(Into::into);
        let worker = Worker::spawn("flux-control", move |stop| {
            accept_loop(&listener, token, &jobs, stop)
        })?;
        Ok(Self {
            addr,
            _worker: worker,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn accept_loop(
    listener: &TcpListener,
    token: Option<Arc<str>>,
    jobs: &SyncSender<Job>,
    stop: &AtomicBool,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let reply = Reply::error(format!(
                        "busy: {MAX_CONNECTIONS} connections are open already"
                    ));
                    let _ = stream.write_all(reply.to_line().as_bytes());
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let (count, token, jobs) = (open.clone(), token.clone(), jobs.clone());
                let spawned = std::thread::Builder::new()
                    .name("flux-control-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, token.as_deref(), &jobs);
                        count.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// What [`read_frame`] found.
#[derive(Debug, PartialEq)]
enum Frame {
    /// A frame, in the buffer.
    Line,
    /// A frame over [`MAX_FRAME`], skipped up to its newline.
    TooLong(usize),
    /// The end of the stream.
    Eof,
}

/// Reads one newline-terminated frame into `buf` (without the newline); a frame longer than
/// [`MAX_FRAME`] is read to its end and thrown away, never held in memory.
fn read_frame(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Frame> {
    buf.clear();
    let mut skipped = 0usize;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(match (skipped, buf.is_empty()) {
                (0, true) => Frame::Eof,
                (0, false) => Frame::Line,
                (n, _) => Frame::TooLong(n),
            });
        }
        let (chunk, used, end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if skipped == 0 && buf.len() + chunk.len() < MAX_FRAME {
            buf.extend_from_slice(chunk);
        } else {
            skipped += buf.len() + chunk.len();
            buf.clear();
        }
        r.consume(used);
        if end {
            return Ok(if skipped > 0 {
                Frame::TooLong(skipped + 1)
            } else {
                Frame::Line
            });
        }
    }
}

/// Serves one connection until it closes, goes idle or fails.
fn serve(stream: TcpStream, token: Option<&str>, jobs: &SyncSender<Job>) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    loop {
        let reply = match read_frame(&mut reader, &mut buf)? {
            Frame::Eof => return Ok(()),
            Frame::TooLong(n) => Reply::error(format!(
                "frame of {n} bytes refused: frames are at most {MAX_FRAME} bytes (1 MiB)"
            )),
            Frame::Line => {
                let line = buf.strip_suffix(b"\r").unwrap_or(&buf);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match protocol::parse(line, token) {
                    Err(refusal) => refusal.into(),
                    Ok((id, request)) => {
                        let mut reply = run(request, jobs);
                        reply.id = id;
                        reply
                    }
                }
            }
        };
        writer.write_all(reply.to_line().as_bytes())?;
    }
}

/// Hands a request to the play loop and waits for its reply.
fn run(request: protocol::Request, jobs: &SyncSender<Job>) -> Reply {
    let (tx, rx) = sync_channel(1);
    let job = Job {
        request: Ok(request),
        reply: Replier::Wire(tx),
    };
    match jobs.try_send(job) {
        Ok(()) => rx
            .recv_timeout(REPLY_WITHIN)
            .unwrap_or_else(|_| Reply::error("the engine did not answer in time")),
        Err(TrySendError::Full(_)) => {
            Reply::error("busy: too many requests are waiting; try again")
        }
        Err(TrySendError::Disconnected(_)) => Reply::error("the engine is shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_over_the_limit_are_skipped_to_their_newline() {
        let mut input = vec![b'x'; MAX_FRAME + 10];
        input.extend_from_slice(b"\n{\"op\":\"list\"}\nlast");
        let mut r = BufReader::with_capacity(4096, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut r, &mut buf).unwrap(),
            Frame::TooLong(MAX_FRAME + 11)
        );
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Frame::Line);
        assert_eq!(buf, br#"{"op":"list"}"#);
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Frame::Line);
        assert_eq!(buf, b"last");
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Frame::Eof);
    }
}
