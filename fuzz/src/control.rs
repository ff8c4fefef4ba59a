//! The binary's `control` module, cut down to the two decoders.

#[path = "../../crates/cli/src/control/osc.rs"]
pub mod osc;
#[path = "../../crates/cli/src/control/protocol.rs"]
pub mod protocol;

use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};

/// As the binary's `control::Replier`.
pub enum Replier {
    /// To a control connection.
    Wire(SyncSender<protocol::Reply>),
    /// To the sender of an OSC message.
    Osc(SocketAddr),
}

/// As the binary's `control::Job`.
pub struct Job {
    /// The request, or why the message could not be read.
    pub request: Result<protocol::Request, String>,
    /// Where the reply goes.
    pub reply: Replier,
}

/// As the binary's `control::Jobs`, without waking a play loop.
#[derive(Clone)]
pub struct Jobs(pub SyncSender<Job>);

impl Jobs {
    /// Queues `job` without waiting.
    pub fn try_send(&self, job: Job) -> Result<(), TrySendError<Job>> {
        self.0.try_send(job)
    }
}
