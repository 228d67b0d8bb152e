//! Stream state: [`send`] cuts application bytes into frames and resends what is lost;
//! [`recv`] reassembles frames by offset and hands out contiguous bytes as they exist.

pub(crate) mod recv;
pub(crate) mod send;
