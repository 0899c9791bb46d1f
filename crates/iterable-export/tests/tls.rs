//! HTTPS through the TLS backend this binary was built with, against a local TLS listener whose
//! self-signed certificate is made here (rcgen) and trusted with
//! `ClientBuilder::add_root_certificate`. The listener (tokio-rustls) terminates TLS and forwards
//! the bytes to the mock server, so a real export travels over TLS.
//!
//! `cargo test` runs it with the default backend, rustls. CI runs it again with the other one:
//! `cargo test -p iterable-export --no-default-features --features native-tls --test tls`, with
//! `ITERABLE_EXPORT_TEST_TLS_BACKEND=native-tls` so that a build that silently fell back to another
//! backend fails. It is a test binary of its own, not a module of `tests/api`, so that the second
//! run builds and runs only this file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::TryStreamExt;
use iterable_export::{Client, DataType, Error, Format, RateLimit, RetryPolicy};
use iterable_export_mock::MockServer;
use test_support::{BoxError, TestResult, config, day, start};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The backend reqwest uses in this build: native-tls whenever its feature is on (even with rustls
/// also on), otherwise rustls.
const BACKEND: &str = if cfg!(feature = "native-tls") {
    "native-tls"
} else if cfg!(feature = "rustls") {
    "rustls"
} else {
    "none"
};

/// Names the environment variable CI sets to the backend it means to test.
const EXPECTED_BACKEND_VAR: &str = "ITERABLE_EXPORT_TEST_TLS_BACKEND";

/// A TLS listener on 127.0.0.1 that forwards every connection to `upstream` (the mock server).
struct TlsProxy {
    /// `https://127.0.0.1:<port>/api`.
    base_url: String,
    /// The certificate the listener presents, PEM.
    certificate_pem: String,
    /// Handshakes that completed.
    handshakes: Arc<AtomicUsize>,
    /// Handshakes that failed (the client refused the certificate, or spoke no TLS).
    refused: Arc<AtomicUsize>,
}

async fn tls_proxy(upstream: std::net::SocketAddr) -> Result<TlsProxy, BoxError> {
    // Self-signed, for the address the client connects to (an IP address SAN) and for localhost.
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    // The provider is named (not taken from crate features), so the build's feature set cannot
    // make it ambiguous.
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)?;
    // The mock speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handshakes = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let (ok, failed) = (handshakes.clone(), refused.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let (ok, failed) = (ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(socket).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                ok.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut plain) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Ok(TlsProxy {
        base_url: format!("https://{addr}/api"),
        certificate_pem: certified.cert.pem(),
        handshakes,
        refused,
    })
}

async fn mock() -> Result<MockServer, BoxError> {
    start(config(200)).await
}

fn builder(mock: &MockServer, proxy: &TlsProxy) -> iterable_export::ClientBuilder {
    Client::builder()
        .api_key(mock.api_key())
        .base_url(&proxy.base_url)
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(RetryPolicy::none())
}

#[test]
fn the_backend_is_the_one_ci_asked_for() {
    match std::env::var(EXPECTED_BACKEND_VAR) {
        Ok(expected) => assert_eq!(
            BACKEND, expected,
            "{EXPECTED_BACKEND_VAR}={expected}, but this test binary was built with the {BACKEND} backend"
        ),
        Err(_) => assert_ne!(
            BACKEND, "none",
            "built without a TLS backend: enable the `rustls` or `native-tls` feature"
        ),
    }
}

#[tokio::test]
async fn an_export_over_https_with_a_trusted_self_signed_certificate() -> TestResult {
    let mock = mock().await?;
    let proxy = tls_proxy(mock.addr()).await?;
    let client = builder(&mock, &proxy)
        .add_root_certificate(proxy.certificate_pem.as_bytes())
        .build()?;
    let (start, end) = (day(0), day(1));
    let body: Vec<u8> = client
        .export(DataType::EmailSend)
        .between(start, end)
        .body(Format::Ndjson)
        .await
        .map_err(|err| format!("{BACKEND}: the HTTPS export failed: {err} ({err:?})"))?
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await?;
    let expected = iterable_export_mock::expected_body(&mock.config(), "emailSend", start, end)?;
    assert!(!expected.is_empty(), "fixture: the mock serves records for the day");
    assert!(
        body == expected,
        "{BACKEND}: the body differs from the mock's ({} bytes, expected {})",
        body.len(),
        expected.len()
    );
    assert_eq!(
        proxy.handshakes.load(Ordering::SeqCst),
        1,
        "{BACKEND}: one TLS connection"
    );
    assert_eq!(
        proxy.refused.load(Ordering::SeqCst),
        0,
        "{BACKEND}: no failed handshake"
    );
    eprintln!("HTTPS export through the {BACKEND} backend: {} bytes", body.len());
    Ok(())
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() -> TestResult {
    let mock = mock().await?;
    let proxy = tls_proxy(mock.addr()).await?;
    let client = builder(&mock, &proxy).build()?;
    let result = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .body(Format::Ndjson)
        .await;
    match result {
        Err(Error::Transport { ref message, .. }) => {
            assert!(
                message.starts_with("cannot connect to the server"),
                "{BACKEND}: {message}"
            );
        }
        Err(other) => return Err(format!("{BACKEND}: not a transport error: {other:?}").into()),
        Ok(_) => return Err(format!("{BACKEND}: a certificate nobody trusts was accepted").into()),
    }
    // The chain names the certificate problem (the wording is the backend's).
    let chain = error_chain(result.err().as_ref());
    assert!(chain.to_lowercase().contains("certificate"), "{BACKEND}: {chain}");
    assert_eq!(
        proxy.handshakes.load(Ordering::SeqCst),
        0,
        "{BACKEND}: no handshake completed"
    );
    assert!(mock.requests().is_empty(), "{BACKEND}: nothing reached the server");
    Ok(())
}

#[test]
fn a_bundle_without_a_certificate_is_a_config_error() {
    for pem in [
        "",
        "not a certificate",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let built = Client::builder().api_key("k").add_root_certificate(pem).build();
        match built {
            Err(Error::Config(message)) => assert!(message.starts_with("root certificate bundle #1"), "{message}"),
            other => panic!("{pem:?}: expected a configuration error, got {other:?}"),
        }
    }
}

/// The error and its sources, joined.
fn error_chain(err: Option<&Error>) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = err.map(|e| e as _);
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    parts.join(": ")
}
