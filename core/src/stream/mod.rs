//! Stream state: [`send`] cuts application bytes into frames and resends what is lost;
//! [`recv`] reassembles frames by offset and hands out contiguous bytes as they exist;
//! [`held`] says what received bytes cost to hold and the budget they stay within;
//! `by_offset` keeps both kinds' pieces in offset order.

mod by_offset;
pub(crate) mod held;
pub(crate) mod recv;
pub(crate) mod send;
