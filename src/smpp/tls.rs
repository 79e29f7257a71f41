//! SMPP over TLS, for SMSCs that offer it (rustls; no OpenSSL on the host).
//!
//! Carriers often sign their SMPP endpoint with a private CA, so the trust anchors come from a
//! PEM file in config when given, else the Mozilla roots. The name to verify is
//! `tls_server_name` when given, else the host of the SMSC address as written (a name or an
//! IP address).

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("CA file {file}: {message}")]
    CaFile { file: String, message: String },
    #[error("TLS server name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
}

/// The trust anchors: the CAs of a PEM file when given (private CAs are common for SMSCs and
/// internal services alike), else the Mozilla roots. Also used by the remote auth core.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |message: String| TlsError::CaFile {
                file: path.display().to_string(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no usable certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// A byte stream the SMPP framing can run over: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How to wrap a connection to one SMSC in TLS.
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    pub fn new(
        ca_file: Option<&Path>,
        server_name: Option<&str>,
        host: &str,
    ) -> Result<TlsClient, TlsError> {
        let roots = root_store(ca_file)?;
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Handshake(std::io::Error::other(e)))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = server_name.unwrap_or(host);
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::ServerName(name.to_owned()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    pub async fn wrap(&self, tcp: TcpStream) -> Result<Box<dyn Stream>, TlsError> {
        let tls = self
            .connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(TlsError::Handshake)?;
        Ok(Box::new(tls))
    }
}
