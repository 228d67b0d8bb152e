//! A request/response service on 127.0.0.1: a node serves `/kv/get/1` lookups from a small
//! table, each request answered by a task of its own; a client asks for a few keys at once
//! and prints the answers, then asks for one the node refuses.
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use weir_tokio::{Config, Endpoint, Error, Label, RequestError};

/// The code the node refuses a key it does not hold with.
const NOT_FOUND: u64 = 404;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let service = Label::from_static("/kv/get/1").expect("a label");
    let table: Arc<BTreeMap<&str, &str>> = Arc::new(
        [("alpha", "first"), ("beta", "second"), ("gamma", "third")]
            .into_iter()
            .collect(),
    );
    let node = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let addr = node.local_addr();
    let serving = tokio::spawn(async move {
        let conn = node.accept().await?;
        loop {
            let (request, responder) = match conn.accept_request().await {
                Ok(r) => r,
                // The client closed the connection: the service is done.
                Err(Error::Closed(_)) => return Ok::<_, Error>(node),
                Err(e) => return Err(e),
            };
            let table = Arc::clone(&table);
            tokio::spawn(async move {
                let key = String::from_utf8_lossy(request.body()).into_owned();
                match table.get(key.as_str()) {
                    Some(value) => {
                        let _ = responder.reply(Bytes::from(value.to_string())).await;
                    }
                    None => responder.refuse(NOT_FOUND),
                }
            });
        }
    });
    let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let conn = client.connect(addr).await?;
    let lookups = ["alpha", "beta", "gamma"].map(|key| {
        let (conn, service) = (conn.clone(), service.clone());
        tokio::spawn(async move { (key, conn.request(&service, Bytes::from(key)).await) })
    });
    for lookup in lookups {
        let (key, value) = lookup.await.expect("the lookup task");
        println!("{key} = {}", String::from_utf8_lossy(&value?));
    }
    match conn.request(&service, Bytes::from("delta")).await {
        Err(Error::Request(RequestError::Refused { code: NOT_FOUND })) => println!("delta: not found"),
        other => println!("delta: unexpected {other:?}"),
    }
    conn.close(0, "done").await?;
    serving.await.expect("the service task")?;
    Ok(())
}
