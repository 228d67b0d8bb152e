//! A weir-tokio echo server and a client talking to it on 127.0.0.1.
use bytes::Bytes;
use weir_tokio::{Config, Endpoint, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let addr = server.local_addr();
    tokio::spawn(async move {
        while let Ok(conn) = server.accept().await {
            tokio::spawn(async move {
                while let Ok(m) = conn.recv_message().await {
                    let _ = conn.send_message(m).await; // echo
                }
            });
        }
    });
    let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let conn = client.connect(addr).await?;
    conn.send_message(Bytes::from_static(b"ping")).await?;
    println!("echoed: {:?}", conn.recv_message().await?);
    Ok(())
}
