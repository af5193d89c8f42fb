//! TLS 1.3 for the QUIC endpoint (rustls with the ring provider, ALPN `fix44`): the venue's
//! certificate (configured PEM files, or a self-signed one made on first start and kept), and
//! the client side that trusts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// The ALPN protocol id of FIX 4.4 sessions.
pub const ALPN_FIX44: &[u8] = b"fix44";
/// The ALPN protocol id of the binary order-by-order market-data feed (`[network] md`).
pub const ALPN_ITCH_MD: &[u8] = b"itch-md";

/// TLS set-up failures.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// QUIC refused the TLS configuration.
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

/// Where the venue's certificate comes from.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Certificate chain PEM.
    pub cert: PathBuf,
    /// Private key PEM.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by a CA in this PEM file.
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// The self-signed pair kept in `dir` (`cert.pem`, `key.pem`), created when missing.
    /// Returns the paths and whether they were just created.
    pub fn self_signed_in(dir: &Path) -> Result<(ServerTls, bool), TlsError> {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let created = if cert.exists() && key.exists() {
            false
        } else {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_owned(), source })?;
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let made = rcgen::generate_simple_self_signed(names)?;
            write_private(&key, made.key_pair.serialize_pem().as_bytes())?;
            std::fs::write(&cert, made.cert.pem())
                .map_err(|source| TlsError::Io { path: cert.clone(), source })?;
            true
        };
        Ok((ServerTls { cert, key, client_ca: None }, created))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| TlsError::Io { path: path.to_owned(), source })?;
    file.write_all(bytes).map_err(|source| TlsError::Io { path: path.to_owned(), source })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: e.to_string() })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_owned(), what: "no certificate in the file".into() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: e.to_string() })
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// The rustls server configuration: TLS 1.3 only, ALPN `fix44`.
pub fn server_config(tls: &ServerTls) -> Result<rustls::ServerConfig, TlsError> {
    server_config_alpn(tls, ALPN_FIX44)
}

/// The rustls server configuration: TLS 1.3 only, the given ALPN protocol id.
pub fn server_config_alpn(tls: &ServerTls, alpn: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Pem { path: ca.clone(), what: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(read_certs(&tls.cert)?, read_key(&tls.key)?)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The rustls client configuration trusting the CAs (or the self-signed certificate) in
/// `ca`, with an optional client certificate and key.
pub fn client_config(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    client_config_alpn(ca, client_cert, ALPN_FIX44)
}

/// [`client_config`] with another ALPN protocol id.
pub fn client_config_alpn(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca)?);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?,
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The quinn knobs that matter for small messages on a LAN, each measured in BENCHMARKS.md
/// (`exchange bench e2e --quic NAME=VALUE`). Both ends use the same struct.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuicTuning {
    /// Initial RTT estimate in µs, before the first sample (quinn's default is 333 ms, which
    /// makes the first loss recovery on a LAN slow).
    pub initial_rtt_us: u64,
    /// ACK frequency extension: ask the peer to acknowledge after this many ack-eliciting
    /// packets (`None`: do not ask; the peer's default is 1 immediately + its own max ack delay).
    pub ack_eliciting_threshold: Option<u32>,
    /// ACK frequency extension: the longest the peer may delay an acknowledgement, µs (with
    /// `ack_eliciting_threshold`).
    pub max_ack_delay_us: Option<u64>,
    /// UDP segmentation offload (GSO) for batches of packets.
    pub segmentation_offload: bool,
    /// MTU discovery (probes after the handshake).
    pub mtu_discovery: bool,
    /// Flow-control window of a stream this end receives on, bytes (`None`: quinn's default,
    /// about 1.25 MB). How much the peer may send that this end has not read.
    pub stream_receive_window_bytes: Option<u32>,
}

impl Default for QuicTuning {
    fn default() -> QuicTuning {
        QuicTuning {
            initial_rtt_us: 1_000,
            ack_eliciting_threshold: None,
            max_ack_delay_us: None,
            segmentation_offload: true,
            mtu_discovery: true,
            stream_receive_window_bytes: None,
        }
    }
}

/// QUIC transport parameters for small messages on a LAN: the [`QuicTuning`], few streams per
/// connection (one FIX session each), keep-alive below the idle timeout.
pub fn transport_config(tuning: &QuicTuning) -> quinn_proto::TransportConfig {
    use std::time::Duration;
    let mut transport = quinn_proto::TransportConfig::default();
    transport
        .initial_rtt(Duration::from_micros(tuning.initial_rtt_us.max(1)))
        .max_concurrent_bidi_streams(4u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .keep_alive_interval(Some(Duration::from_secs(5)))
        .max_idle_timeout(Some(quinn_proto::VarInt::from_u32(60_000).into()))
        .enable_segmentation_offload(tuning.segmentation_offload);
    if !tuning.mtu_discovery {
        transport.mtu_discovery_config(None);
    }
    if let Some(window) = tuning.stream_receive_window_bytes {
        transport.stream_receive_window(window.into());
    }
    if tuning.ack_eliciting_threshold.is_some() || tuning.max_ack_delay_us.is_some() {
        let mut ack = quinn_proto::AckFrequencyConfig::default();
        if let Some(threshold) = tuning.ack_eliciting_threshold {
            ack.ack_eliciting_threshold(threshold.into());
        }
        ack.max_ack_delay(tuning.max_ack_delay_us.map(Duration::from_micros));
        transport.ack_frequency_config(Some(ack));
    }
    transport
}

/// quinn server configuration from TLS settings.
pub fn quinn_server_config(
    tls: &ServerTls,
    tuning: &QuicTuning,
) -> Result<quinn_proto::ServerConfig, TlsError> {
    quinn_server_config_alpn(tls, tuning, ALPN_FIX44)
}

/// [`quinn_server_config`] with another ALPN protocol id.
pub fn quinn_server_config_alpn(
    tls: &ServerTls,
    tuning: &QuicTuning,
    alpn: &[u8],
) -> Result<quinn_proto::ServerConfig, TlsError> {
    let crypto = quinn_proto::crypto::rustls::QuicServerConfig::try_from(server_config_alpn(tls, alpn)?)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn_proto::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(tuning)));
    Ok(config)
}

/// quinn client configuration.
pub fn quinn_client_config(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
    tuning: &QuicTuning,
) -> Result<quinn_proto::ClientConfig, TlsError> {
    quinn_client_config_alpn(ca, client_cert, tuning, ALPN_FIX44)
}

/// [`quinn_client_config`] with another ALPN protocol id.
pub fn quinn_client_config_alpn(
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
    tuning: &QuicTuning,
    alpn: &[u8],
) -> Result<quinn_proto::ClientConfig, TlsError> {
    let crypto =
        quinn_proto::crypto::rustls::QuicClientConfig::try_from(client_config_alpn(ca, client_cert, alpn)?)
            .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn_proto::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(tuning)));
    Ok(config)
}
