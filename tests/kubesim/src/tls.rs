//! HTTPS: a throwaway CA and a serving certificate made at start (what a kubeadm cluster's
//! /etc/kubernetes/pki holds), for clients that only speak https:// — kube's in-cluster config,
//! which a DaemonSet's pod uses (`KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's
//! `ca.crt` and `token`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

/// The names every serving certificate carries besides the listener's address: the API
/// server's in-cluster names and the loopback ones.
const NAMES: [&str; 7] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
    "127.0.0.1",
    "::1",
];

pub(crate) struct TlsMaterial {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// A CA and a certificate it signs for `listener_ip` (unless unspecified), [`NAMES`] and
/// `extra` (DNS names or IP addresses).
pub(crate) fn make(listener_ip: IpAddr, extra: &[String]) -> io::Result<TlsMaterial> {
    let fail = |e: rcgen::Error| io::Error::other(format!("making the TLS certificates: {e}"));
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "kubesim-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    if !listener_ip.is_unspecified() {
        names.push(listener_ip.to_string());
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    let mut leaf = CertificateParams::new(names).map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(fail)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}
