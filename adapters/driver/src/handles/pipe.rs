//! A stream being forwarded by a relay.

use std::future::poll_fn;
use std::sync::Arc;

use weir_core::{PipeId, PipeStats};

use super::endpoint::{Shared, Urgency};
use crate::Error;

/// A stream being forwarded by [`Endpoint::pipe`](super::Endpoint::pipe). Dropping the
/// handle does not stop it. [`wait`](Self::wait) is cancel-safe.
pub struct Pipe {
    shared: Arc<Shared>,
    id: PipeId,
}

impl Pipe {
    pub(crate) fn new(shared: &Arc<Shared>, id: PipeId) -> Pipe {
        Pipe {
            shared: Arc::clone(shared),
            id,
        }
    }

    /// Ready once every target acknowledged the whole stream, with the pipe's counters.
    pub async fn wait(&self) -> Result<PipeStats, Error> {
        poll_fn(|cx| {
            self.shared
                .poll(Urgency::Soon, |d| d.poll_pipe(self.id, cx.waker()))
        })
        .await
    }

    /// The pipe's counters so far (the last ones, once it ended).
    pub async fn stats(&self) -> Option<PipeStats> {
        self.shared.call(|d| d.pipe_stats(self.id)).ok().flatten()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.shared.call(|d| d.release_pipe(id));
    }
}
