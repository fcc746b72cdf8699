//! `https://` against a TLS endpoint on loopback whose certificate is signed
//! by a CA made at test time (no key is ever written to the repository).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use garrison_client::{Client, HttpError, ServerUrl};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
    }
}

#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves TLS on 127.0.0.1:0, one request per connection, answering 200
/// with `{"ok":true,"got":<body length>}`; records what arrived.
fn tls_server(pki: &Pki) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            // A client that refuses the certificate ends the handshake here.
            let mut request_line = String::new();
            if tls.read_line(&mut request_line).is_err() || request_line.is_empty() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                tls.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let len = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0u8; len];
            tls.read_exact(&mut body).unwrap();
            // Logged before answering: the test looks once it has the answer.
            log.lock().unwrap().push(Seen {
                request_line: request_line.trim_end().to_string(),
                headers,
                body,
            });
            let answer = json!({"ok": true, "got": len}).to_string();
            let tls = tls.get_mut();
            write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
            tls.flush().unwrap();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_request_over_tls_arrives_and_is_answered() {
    let pki = pki("Garrison test CA");
    let (url, seen) = tls_server(&pki);
    let client = Client::with_ca_pem(pki.ca_pem.as_bytes()).unwrap();

    let ingest =
        ServerUrl::with_client(&format!("{url}/internal/milestones/ingest"), &client).unwrap();
    let body = br#"{"idempotencyKey":"k-1"}"#;
    let resp = ingest
        .post(
            "",
            &[
                ("content-type", "application/json"),
                ("x-openclaw-signature", "abc"),
            ],
            body,
        )
        .await
        .unwrap();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let answer: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(answer, json!({"ok": true, "got": body.len()}));

    let server = ServerUrl::with_client(&url, &client).unwrap();
    let (status, answer) = server.get_json("/runs?x=1", Some("tok")).await.unwrap();
    assert_eq!((status, answer["ok"].clone()), (200, json!(true)));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].request_line,
        "POST /internal/milestones/ingest HTTP/1.1"
    );
    assert_eq!(seen[0].body, body);
    assert!(
        seen[0]
            .headers
            .contains(&("x-openclaw-signature".into(), "abc".into()))
    );
    assert_eq!(seen[1].request_line, "GET /runs?x=1 HTTP/1.1");
    assert!(
        seen[1]
            .headers
            .contains(&("authorization".into(), "Bearer tok".into()))
    );
}

#[tokio::test]
async fn a_ca_file_is_read_and_trusted() {
    let pki = pki("Garrison file CA");
    let (url, seen) = tls_server(&pki);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, &pki.ca_pem).unwrap();
    let client = Client::with_ca_file(&file).unwrap();
    let server = ServerUrl::with_client(&url, &client).unwrap();
    let resp = server.post("/x", &[], b"12345").await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_clearly() {
    let pki = pki("Garrison test CA");
    let (url, seen) = tls_server(&pki);
    let other = Client::with_ca_pem(self::pki("Some other CA").ca_pem.as_bytes()).unwrap();
    for client in [other, Client::new().unwrap()] {
        let server = ServerUrl::with_client(&url, &client).unwrap();
        let e = server.post("/x", &[], b"{}").await.unwrap_err();
        assert!(matches!(e, HttpError::Connect { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot connect to {url}")),
            "{text}"
        );
        assert!(text.contains("invalid peer certificate"), "{text}");
        assert!(text.contains("GARRISON_TLS_CA_FILE"), "{text}");
    }
    assert!(seen.lock().unwrap().is_empty());
}
