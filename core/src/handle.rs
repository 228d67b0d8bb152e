//! The handle an application names a connection by: a leaf, so that every module that
//! passes handles around (events, pipes, the endpoint's slots) can name it without
//! depending on the others.

use core::fmt;

/// Names one connection of an [`Endpoint`](crate::Endpoint): the slot it occupies, and
/// which of the slot's connections it is. A slot is reused once its connection is gone, but
/// each reuse is a new generation, so a handle kept from a connection that is gone (its
/// `Closed` still queued, say) never addresses the slot's next one: calls with it fail with
/// [`ApiError::UnknownConnection`](crate::ApiError::UnknownConnection).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionHandle {
    slot: u32,
    generation: u32,
}

impl ConnectionHandle {
    /// The handle of the first connection to occupy slot `i` (handles are slots numbered
    /// from 0; for tests and tools that replay a known sequence).
    pub const fn from_index(i: u32) -> Self {
        ConnectionHandle {
            slot: i,
            generation: 0,
        }
    }

    /// The `generation`th connection to occupy slot `slot` (counting from 0).
    pub(crate) const fn new(slot: u32, generation: u32) -> Self {
        ConnectionHandle { slot, generation }
    }

    /// The handle's slot (for logs and tables).
    pub fn index(self) -> u32 {
        self.slot
    }

    /// Which of its slot's connections this is, counting from 0.
    pub fn generation(self) -> u32 {
        self.generation
    }

    pub(crate) fn slot(self) -> usize {
        self.slot as usize
    }
}

/// `ConnectionHandle(3)`, `ConnectionHandle(3.1)`: as `Display`, without the `#`.
impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            0 => write!(f, "ConnectionHandle({})", self.slot),
            g => write!(f, "ConnectionHandle({}.{g})", self.slot),
        }
    }
}

/// `#slot`, and `.generation` after it from the slot's second connection on: `#3`, `#3.1`.
impl fmt::Display for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            0 => write!(f, "#{}", self.slot),
            g => write!(f, "#{}.{g}", self.slot),
        }
    }
}
