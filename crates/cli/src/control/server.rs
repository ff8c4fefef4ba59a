//! The TCP control server: newline-delimited JSON on its own threads.
//!
//! One thread accepts (blocking: it wakes only for a connection); each connection is served on a
//! thread of its own, at most [`MAX_CONNECTIONS`] at once. A request goes to the play loop
//! over the bounded job queue and its reply comes back over a channel of its own; the server
//! never touches the session or the engine.
//!
//! Defences (docs/PROTOCOL.md, "Security"):
//! - a connection whose first line is not a valid request (an HTTP request line never is
//!   one, so a web page's cross-protocol POST or WebSocket upgrade) gets one error line and
//!   is closed before anything else it sent is read;
//! - a started frame must reach its newline within [`FRAME_WITHIN`];
//! - when every slot is taken, the connection idle the longest (not waiting for a reply)
//!   is closed to make room for the new one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::events::{dropped_line, Subscribers, Subscription, MAX_SUBSCRIBERS};
use super::protocol::{self, Reply, Request, MAX_FRAME};
use super::{Job, Jobs, Replier};
use crate::worker::{spawn_guarded, Worker};

/// Connections served at once; past it the longest-idle one gives way.
pub const MAX_CONNECTIONS: usize = 8;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// A frame, once its first byte arrived, must reach its newline within this time.
pub const FRAME_WITHIN: Duration = Duration::from_secs(5);
/// How long a reply may take (an `eval` may run for up to 5 s of loading).
const REPLY_WITHIN: Duration = Duration::from_secs(15);

/// A running control server.
pub struct Server {
    addr: SocketAddr,
    /// The accept loop; `None` once dropped.
    worker: Option<Worker>,
}

impl Server {
    /// Serves `listener`, sending requests to `jobs`; `token`, when given, must be in every
    /// request.
    ///
    /// # Errors
    ///
    /// When the listener cannot be made blocking or the thread cannot start.
    pub fn start(
        listener: TcpListener,
        token: Option<String>,
        jobs: Jobs,
        subscribers: Subscribers,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(false)?;
        let token: Option<Arc<str>> = token.map(Into::into);
        let worker = Worker::spawn("flux-control", move |stop| {
            accept_loop(&listener, token, &jobs, &subscribers, stop);
        })?;
        Ok(Self {
            addr,
            worker: Some(worker),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    /// Stops the accept loop: sets its stop flag, then wakes its blocking `accept` with a
    /// connection of our own and joins it. When that connection cannot be made, the thread
    /// is left behind (blocked in `accept`) rather than waited for.
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        worker.request_stop();
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => drop(worker),
            Err(_) => worker.detach(),
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Slot {
    id: u64,
    /// A handle to close it with.
    stream: TcpStream,
    /// When it last finished a frame (or opened).
    active: Instant,
    /// Waiting for the engine's reply: never closed to make room.
    busy: bool,
}

/// The open connections.
#[derive(Clone, Default)]
struct Slots(Arc<Mutex<Vec<Slot>>>);

impl Slots {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Slot>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes a slot for `stream`, closing the longest-idle connection when all are taken;
    /// false when every connection is busy.
    fn take(&self, id: u64, stream: &TcpStream) -> bool {
        self.with(|slots| {
            if slots.len() >= MAX_CONNECTIONS {
                let oldest = slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.busy)
                    .min_by_key(|(_, s)| s.active)
                    .map(|(i, _)| i);
                let Some(i) = oldest else {
                    return false;
                };
                let gone = slots.swap_remove(i);
                let _ = gone.stream.shutdown(Shutdown::Both);
            }
            match stream.try_clone() {
                Ok(handle) => {
                    slots.push(Slot {
                        id,
                        stream: handle,
                        active: Instant::now(),
                        busy: false,
                    });
                    true
                }
                Err(_) => false,
            }
        })
    }

    fn set_busy(&self, id: u64, busy: bool) {
        self.with(|slots| {
            if let Some(s) = slots.iter_mut().find(|s| s.id == id) {
                s.busy = busy;
                s.active = Instant::now();
            }
        });
    }

    fn release(&self, id: u64) {
        self.with(|slots| slots.retain(|s| s.id != id));
    }
}

fn accept_loop(
    listener: &TcpListener,
    token: Option<Arc<str>>,
    jobs: &Jobs,
    subscribers: &Subscribers,
    stop: &AtomicBool,
) {
    let slots = Slots::default();
    let mut next_id = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok(_) if stop.load(Ordering::Relaxed) => break,
            Ok((mut stream, _)) => {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                next_id += 1;
                let id = next_id;
                if !slots.take(id, &stream) {
                    let reply = Reply::error(format!(
                        "busy: {MAX_CONNECTIONS} connections are waiting for replies already"
                    ));
                    let _ = stream.write_all(reply.to_line().as_bytes());
                    continue;
                }
                let (conn_slots, token, jobs) = (slots.clone(), token.clone(), jobs.clone());
                let subscribers = subscribers.clone();
                let done = conn_slots.clone();
                let spawned = spawn_guarded(
                    "flux-control-conn",
                    move || {
                        let conn = Conn {
                            token: token.as_deref(),
                            jobs: &jobs,
                            slots: &conn_slots,
                            subscribers: &subscribers,
                            id,
                        };
                        let _ = serve(stream, &conn);
                    },
                    move || done.release(id),
                );
                if spawned.is_err() {
                    slots.release(id);
                }
            }
            // Out of file descriptors, say: try again a little later.
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
    /// A frame that did not reach its newline within [`FRAME_WITHIN`].
    Late,
    /// The end of the stream, or a connection idle for too long.
    Eof,
}

/// A reader whose reads can be given a time limit.
trait TimedRead: BufRead {
    /// Limits the next reads to `limit`.
    fn set_limit(&mut self, limit: Duration) -> io::Result<()>;
}

impl TimedRead for BufReader<TcpStream> {
    fn set_limit(&mut self, limit: Duration) -> io::Result<()> {
        self.get_ref()
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))))
    }
}

impl TimedRead for &[u8] {
    fn set_limit(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one newline-terminated frame into `buf` (without the newline); a frame longer than
/// [`MAX_FRAME`] is read to its end and thrown away, never held in memory. A frame that has
/// started must end within `within`; between frames the connection may idle for [`IDLE`].
fn read_frame(r: &mut impl TimedRead, buf: &mut Vec<u8>, within: Duration) -> io::Result<Frame> {
    buf.clear();
    let mut skipped = 0usize;
    let mut started: Option<Instant> = None;
    loop {
        let limit = match started {
            None => IDLE,
            Some(t) => match within.checked_sub(t.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(Frame::Late),
            },
        };
        r.set_limit(limit)?;
        let available = match r.fill_buf() {
            Ok(a) => a,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if started.is_some() {
                    return Ok(Frame::Late);
                }
                return Ok(Frame::Eof);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (skipped, buf.is_empty()) {
                (0, true) => Frame::Eof,
                (0, false) => Frame::Line,
                (n, _) => Frame::TooLong(n),
            });
        }
        started.get_or_insert_with(Instant::now);
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

/// The reply to a first line that is not a request; the connection closes after it.
fn not_a_request(why: &str) -> Reply {
    Reply::error(format!(
        "not a flux control connection: the first line must be a JSON request ({why}); closing"
    ))
}

/// What a connection's thread serves it with.
struct Conn<'a> {
    token: Option<&'a str>,
    jobs: &'a Jobs,
    slots: &'a Slots,
    subscribers: &'a Subscribers,
    id: u64,
}

/// Serves one connection until it closes, goes idle or fails. The first frame must be a
/// valid request, or the connection gets one error line and is closed.
fn serve(stream: TcpStream, conn: &Conn<'_>) -> io::Result<()> {
    let (token, jobs, slots, id) = (conn.token, conn.jobs, conn.slots, conn.id);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        let frame = read_frame(&mut reader, &mut buf, FRAME_WITHIN)?;
        let (reply, close) = match frame {
            Frame::Eof => return Ok(()),
            Frame::Late => (
                Reply::error(format!(
                    "frame refused: it did not end with a newline within {} s; closing",
                    FRAME_WITHIN.as_secs()
                )),
                true,
            ),
            Frame::TooLong(n) if first => (not_a_request(&format!("{n} bytes, too long")), true),
            Frame::TooLong(n) => (
                Reply::error(format!(
                    "frame of {n} bytes refused: frames are at most {MAX_FRAME} bytes (1 MiB)"
                )),
                false,
            ),
            Frame::Line => {
                let line = buf.strip_suffix(b"\r").unwrap_or(&buf);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match protocol::parse(line, token) {
                    // A request without the right token: said plainly, then closed.
                    Err(refusal) if first && refusal.token => (refusal.into(), true),
                    Err(refusal) if first => (not_a_request(&refusal.error), true),
                    Err(refusal) => (refusal.into(), false),
                    Ok((request_id, Request::Subscribe { events })) => {
                        match subscribe(&events, conn.subscribers) {
                            Ok(subscription) => {
                                let reply = Reply {
                                    id: request_id,
                                    ok: true,
                                    message: Some("subscribed to faults".into()),
                                    ..Reply::default()
                                };
                                writer.write_all(reply.to_line().as_bytes())?;
                                // Held like a busy connection: never closed to make room.
                                slots.set_busy(id, true);
                                return stream_events(&mut writer, &subscription);
                            }
                            Err(e) => (
                                Reply {
                                    id: request_id,
                                    ..Reply::error(e)
                                },
                                false,
                            ),
                        }
                    }
                    Ok((request_id, request)) => {
                        slots.set_busy(id, true);
                        let mut reply = run(request, jobs);
                        slots.set_busy(id, false);
                        reply.id = request_id;
                        (reply, false)
                    }
                }
            }
        };
        first = false;
        writer.write_all(reply.to_line().as_bytes())?;
        if close {
            close_gently(&mut writer);
            return Ok(());
        }
    }
}

/// Checks a subscription's `events` (empty: `faults`) and takes a place for it.
fn subscribe(events: &[String], subscribers: &Subscribers) -> Result<Subscription, String> {
    if let Some(other) = events.iter().find(|e| e.as_str() != "faults") {
        return Err(format!(
            "subscribe: unknown event kind {other:?}; there is \"faults\""
        ));
    }
    subscribers
        .add()
        .ok_or_else(|| format!("busy: {MAX_SUBSCRIBERS} connections are subscribed already"))
}

/// Writes the subscription's event lines until the client goes away (checked every
/// second) or the server stops. What the client sends meanwhile is read and dropped.
fn stream_events(writer: &mut TcpStream, subscription: &Subscription) -> io::Result<()> {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        match subscription.lines.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let dropped = subscription.take_dropped();
                if dropped > 0 {
                    writer.write_all(dropped_line(dropped).as_bytes())?;
                }
                writer.write_all(line.as_bytes())?;
            }
            Err(RecvTimeoutError::Timeout) => {
                if closed(writer)? {
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Whether the peer has closed the connection; reads and drops what it sent.
fn closed(stream: &mut TcpStream) -> io::Result<bool> {
    stream.set_nonblocking(true)?;
    let mut sink = [0u8; 4096];
    let mut left = MAX_FRAME;
    let result = loop {
        match stream.read(&mut sink) {
            Ok(0) => break Ok(true),
            Ok(n) if n < left => left -= n,
            Ok(_) => break Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break Ok(true),
        }
    };
    stream.set_nonblocking(false)?;
    result
}

/// Ends the connection so the client reads the last line: no more writes, then what it
/// still sends is read and dropped (at most 1 MiB, for at most half a second), never run.
fn close_gently(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let until = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 16 * 1024];
    let mut left = MAX_FRAME;
    while left > 0 && Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Hands a request to the play loop and waits for its reply.
fn run(request: protocol::Request, jobs: &Jobs) -> Reply {
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
    fn a_frame_that_does_not_reach_its_newline_in_time_is_late() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(server);
        let mut buf = Vec::new();
        client.write_all(b"{\"op\":\"list\"}\n{\"op\":").unwrap();
        let within = Duration::from_millis(200);
        assert_eq!(
            read_frame(&mut reader, &mut buf, within).unwrap(),
            Frame::Line
        );
        assert_eq!(
            read_frame(&mut reader, &mut buf, within).unwrap(),
            Frame::Late
        );
    }

    #[test]
    fn a_blocking_accept_serves_and_then_stops_when_the_server_is_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (jobs, queue) = sync_channel(4);
        let server = Server::start(
            listener,
            None,
            Jobs::new(jobs, None),
            Subscribers::default(),
        )
        .unwrap();
        let addr = server.addr();
        // A request reaches the play loop's queue.
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"{\"op\":\"list\"}\n").unwrap();
        let job = queue.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(job.request, Ok(Request::List)));
        drop(job);
        // Dropping the server wakes its accept and joins it: the port is closed.
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn frames_over_the_limit_are_skipped_to_their_newline() {
        let mut input = vec![b'x'; MAX_FRAME + 10];
        input.extend_from_slice(b"\n{\"op\":\"list\"}\nlast");
        let mut r = &input[..];
        let mut buf = Vec::new();
        let within = FRAME_WITHIN;
        assert_eq!(
            read_frame(&mut r, &mut buf, within).unwrap(),
            Frame::TooLong(MAX_FRAME + 11)
        );
        assert_eq!(read_frame(&mut r, &mut buf, within).unwrap(), Frame::Line);
        assert_eq!(buf, br#"{"op":"list"}"#);
        assert_eq!(read_frame(&mut r, &mut buf, within).unwrap(), Frame::Line);
        assert_eq!(buf, b"last");
        assert_eq!(read_frame(&mut r, &mut buf, within).unwrap(), Frame::Eof);
    }
}
