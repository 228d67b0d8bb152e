//! The handles an application holds, the same for every runtime: [`Endpoint`],
//! [`Connection`], [`SendStream`], [`RecvStream`], [`Pipe`], and a channel's two sides,
//! [`ChannelSender`] and [`ChannelReceiver`], a request's [`Reply`] and [`Responder`]. Their calls are futures (and
//! `poll_*` methods) that run on the driver in the calling task under [`Shared`]'s lock
//! and, when the core has no answer yet, register the task's waker with the driver; the
//! driver wakes it when what it waits for changes. An async runtime awaits them; a
//! blocking adapter runs them to completion on the calling thread (`weir-std`'s
//! `block_on`). Each handle's documentation says how its calls behave when cancelled.

mod channel;
mod connection;
mod endpoint;
mod pipe;
mod pool;
mod recv;
mod request;
mod send;
#[cfg(feature = "tokio")]
mod tokio_io;

pub use channel::{ChannelError, ChannelReceiver, ChannelSender, CHANNEL_REFUSED};
pub use connection::Connection;
pub use endpoint::{Endpoint, Locked, Runtime, Shared, Urgency};
pub use pipe::Pipe;
pub use recv::RecvStream;
pub use request::{Reply, Request, RequestOptions, Responder};
pub use send::{SendStream, SLICE_WRITE_LIMIT};
