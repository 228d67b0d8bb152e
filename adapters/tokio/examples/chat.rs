//! Two peers chatting over ordered message channels on 127.0.0.1: each line is a message on
//! the `/chat/1` channel, read in the order sent; the room's host answers every line.
use bytes::Bytes;
use weir_tokio::{Config, Endpoint, Error, Label};

const LIMIT: u64 = 64 << 10;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let host = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let addr = host.local_addr();
    let room = tokio::spawn(async move {
        let conn = host.accept().await?;
        let mut lines = conn.accept_stream().await?.into_channel(LIMIT);
        let mut replies = conn
            .open_channel(Label::from_static("/chat/1").expect("a label"))
            .await?;
        while let Some(line) = lines.recv().await? {
            let text = String::from_utf8_lossy(&line).into_owned();
            replies.send(Bytes::from(format!("host heard: {text}"))).await?;
        }
        replies.finish().await?;
        Ok::<_, Error>(host)
    });
    let guest = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let conn = guest.connect(addr).await?;
    let mut out = conn
        .open_channel(Label::from_static("/chat/1").expect("a label"))
        .await?;
    for line in ["hello", "is anyone here?", "bye"] {
        out.send(Bytes::from_static(line.as_bytes())).await?;
    }
    let mut replies = conn.accept_stream().await?.into_channel(LIMIT);
    for _ in 0..3 {
        if let Some(reply) = replies.recv().await? {
            println!("{}", String::from_utf8_lossy(&reply));
        }
    }
    out.finish().await?;
    room.await.expect("the room's task")?;
    Ok(())
}
