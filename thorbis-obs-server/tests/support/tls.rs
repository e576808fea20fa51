//! Certificates generated in the test, and a rustls acceptor for them.

/// A self-signed certificate for 127.0.0.1 and localhost, valid until midnight UTC `days`
/// days from now (or rcgen's far-future default): (acceptor, certificate PEM).
pub fn certificate(days: Option<i64>) -> (tokio_rustls::TlsAcceptor, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
    if let Some(days) = days {
        use chrono::Datelike;
        let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
        params.not_after = rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let pem = cert.pem();
    let der = cert.der().clone();
    let pkey = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![der], pkey)
        .expect("server config");
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)), pem)
}
