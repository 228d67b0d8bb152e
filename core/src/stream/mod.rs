//! Stream state: [`send`] cuts application bytes into frames and resends what is lost;
//! [`recv`] reassembles frames by offset and hands out contiguous bytes as they exist;
//! [`held`] says what received bytes cost to hold and the budget they stay within;
//! `written` keeps a send stream's unacknowledged chunks.

pub(crate) mod held;
pub(crate) mod recv;
pub(crate) mod send;
mod written;
