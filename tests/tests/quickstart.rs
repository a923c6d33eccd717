//! The README's quickstart, run as a user would: `gatehouse-demo` (demo shop backends and a
//! standalone proxy on `examples/quickstart/`), then the README's curl commands — a Gateway
//! route, an EdgeService route and an aggregated endpoint — with the answers the README shows.
#![allow(clippy::unwrap_used)]

use gatehouse_tests::binaries;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use gatehouse_tests::ports::free_address;

/// Status, lower-case headers and body of a response.
type Answer<B> = (u16, Vec<(String, String)>, B);

/// One HTTP/1.1 exchange (`Connection: close`); returns status, lower-case headers and body.
fn http(address: SocketAddr, method: &str, path: &str) -> std::io::Result<Answer<String>> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}

fn json_of(address: SocketAddr, method: &str, path: &str) -> Answer<Value> {
    let (status, headers, body) = http(address, method, path).unwrap();
    (
        status,
        headers,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

#[test]
fn the_quickstart_answers_like_the_readme_says() {
    let (listen, admin) = (free_address(), free_address());
    let _demo = Demo(
        Command::new(binaries::demo())
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait for readiness (a hang guard, not a timing assertion).
    let ready = (0..3000).any(|_| {
        let ok = matches!(http(admin, "GET", "/readyz"), Ok((200, _, _)));
        if !ok {
            std::thread::sleep(Duration::from_millis(10));
        }
        ok
    });
    assert!(ready, "gatehouse-demo never became ready");

    // A Gateway route: proxied to the catalog with its path rewritten.
    let (status, headers, product) = json_of(listen, "GET", "/v1/products/42");
    assert_eq!(status, 200);
    assert_eq!(product["title"], "Walnut bookshelf");
    assert_eq!(product["sellerId"], "s-7");
    assert!(headers.contains(&("x-contract".to_owned(), "v1".to_owned())));
    assert!(headers.contains(&("x-served-by".to_owned(), "catalog".to_owned())));

    // An EdgeService route: the mobile card, trimmed to what the app shows.
    let (status, headers, card) = json_of(listen, "GET", "/mobile/v1/products/42");
    assert_eq!(status, 200);
    assert_eq!(
        card,
        json!({"id": "42", "title": "Walnut bookshelf", "price": 189.0, "image": "https://img.example/42/1.jpg"})
    );
    assert!(headers.contains(&("x-edge".to_owned(), "mobile".to_owned())));

    // An aggregated endpoint, reached through the Gateway: product + seller + reviews.
    let (status, _, page) = json_of(listen, "GET", "/v1/products/42/page");
    assert_eq!(status, 200);
    assert_eq!(
        page,
        json!({
            "id": "42", "title": "Walnut bookshelf", "price": 189.0, "seller": "Oak & Iron",
            "reviews": [{"stars": 5, "text": "Sturdy and beautiful."}, {"stars": 4, "text": "Took an hour to assemble."}]
        })
    );

    // Writes pass through; unknown paths get a problem body.
    let (status, _, order) = json_of(listen, "POST", "/v1/orders");
    assert_eq!((status, order["status"].clone()), (201, json!("received")));
    let (status, headers, problem) = json_of(listen, "GET", "/v1/nothing");
    assert_eq!(status, 404);
    assert!(headers.contains(&(
        "content-type".to_owned(),
        "application/problem+json".to_owned()
    )));
    assert_eq!(problem["title"], "No route");
}
