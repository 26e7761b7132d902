//! Mutual TLS 1.3 keyed by the committee's ed25519 network keys.
//!
//! Each node presents a self-signed certificate generated from its network key. Certificates
//! carry no meaning besides that key: names, validity periods and issuers are ignored, and a
//! peer is accepted exactly when the key in its certificate's SubjectPublicKeyInfo is one we
//! allow and its handshake signature verifies under that key. Because the check happens inside
//! the rustls verifiers, an unacceptable peer is refused during the handshake, before a single
//! application byte is exchanged.
//!
//! Only the ring provider is used, passed explicitly (no reliance on a process-wide default),
//! and session resumption is disabled so that every connection proves possession of its key.

use crate::error::NetworkError;
use crate::metrics::{NetworkMetrics, INBOUND, OUTBOUND};
use prometheus::IntCounter;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::fmt;
use std::sync::Arc;
use weft_types::{Committee, KeyPair, PublicKey};

/// The DNS name clients ask for and certificates carry. It is not checked: keys are.
pub const SERVER_NAME: &str = "weft";

/// PKCS#8 v1 (RFC 8410) wrapping of an ed25519 private key, up to the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo of an ed25519 key (RFC 8410), up to the 32-byte key. An ed25519 SPKI
/// has exactly this form, so comparing bytes is a complete parse.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The ring provider every config here is built with.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS certificate and private key, derived from its network key pair.
pub struct TlsIdentity {
    public: PublicKey,
    certificate: CertificateDer<'static>,
    private_key: PrivatePkcs8KeyDer<'static>,
}

impl TlsIdentity {
    pub fn new(keypair: &KeyPair) -> Result<Self, NetworkError> {
        let mut pkcs8 = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32);
        pkcs8.extend_from_slice(&ED25519_PKCS8_PREFIX);
        pkcs8.extend_from_slice(&keypair.seed());
        let private_key = PrivatePkcs8KeyDer::from(pkcs8);
        let cert_error = |e: rcgen::Error| NetworkError::Certificate(e.to_string());
        let signing_key = rcgen::KeyPair::try_from(&private_key).map_err(cert_error)?;
        let public = keypair.public();
        if signing_key.public_key_raw() != public.as_bytes() {
            return Err(NetworkError::Certificate(
                "derived TLS key does not match the network key".into(),
            ));
        }
        let params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(cert_error)?;
        let certificate = params
            .self_signed(&signing_key)
            .map_err(cert_error)?
            .der()
            .clone();
        Ok(Self {
            public,
            certificate,
            private_key,
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.certificate.clone()],
            PrivateKeyDer::Pkcs8(self.private_key.clone_key()),
        )
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsIdentity({:?})", self.public)
    }
}

/// The ed25519 key in a certificate's SubjectPublicKeyInfo. Fails, without panicking, on any
/// certificate that does not parse or whose key is not ed25519.
pub fn public_key_of_certificate(cert: &CertificateDer<'_>) -> Result<PublicKey, NetworkError> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| NetworkError::UnknownPeer(format!("unparseable certificate: {e}")))?;
    let spki = parsed.subject_public_key_info();
    let key = spki
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .filter(|key| key.len() == 32)
        .ok_or_else(|| NetworkError::UnknownPeer("certificate key is not ed25519".into()))?;
    PublicKey::from_bytes(key).map_err(|_| NetworkError::UnknownPeer("invalid ed25519 key".into()))
}

/// The network key the peer of an established connection authenticated with.
pub fn peer_public_key(connection: &rustls::CommonState) -> Option<PublicKey> {
    let cert = connection.peer_certificates()?.first()?;
    public_key_of_certificate(cert).ok()
}

/// Server config accepting clients whose key is any network key of `committee`.
pub fn server_config(
    identity: &TlsIdentity,
    committee: Arc<Committee>,
    metrics: &NetworkMetrics,
) -> Result<Arc<rustls::ServerConfig>, NetworkError> {
    let provider = crypto_provider();
    let verifier = PeerVerifier {
        allowed: Allowed::Committee(committee),
        provider: provider.clone(),
        refused: metrics.handshakes_refused.with_label_values(&[INBOUND]),
    };
    let (chain, key) = identity.chain_and_key();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)?;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Client config accepting only a server whose key is `expected`.
pub fn client_config(
    identity: &TlsIdentity,
    expected: PublicKey,
    metrics: &NetworkMetrics,
) -> Result<Arc<rustls::ClientConfig>, NetworkError> {
    let provider = crypto_provider();
    let verifier = PeerVerifier {
        allowed: Allowed::Exactly(expected),
        provider: provider.clone(),
        refused: metrics.handshakes_refused.with_label_values(&[OUTBOUND]),
    };
    let (chain, key) = identity.chain_and_key();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)?;
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// The name clients connect with (a constant; see [`SERVER_NAME`]).
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from(SERVER_NAME).expect("SERVER_NAME is a valid DNS name"),
    )
}

enum Allowed {
    Committee(Arc<Committee>),
    Exactly(PublicKey),
}

/// Both verifiers: the server's (client certificates) and the client's (server certificate).
struct PeerVerifier {
    allowed: Allowed,
    provider: Arc<CryptoProvider>,
    /// Counted here rather than where the handshake fails, so the count is visible before the
    /// peer can observe the refusal.
    refused: IntCounter,
}

impl fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.allowed {
            Allowed::Committee(c) => write!(f, "PeerVerifier(committee of {})", c.size()),
            Allowed::Exactly(k) => write!(f, "PeerVerifier({k:?})"),
        }
    }
}

impl PeerVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        // A self-signed certificate stands alone; anything else is not one of ours.
        if !intermediates.is_empty() {
            self.refused.inc();
            return Err(CertificateError::BadEncoding.into());
        }
        let Ok(key) = public_key_of_certificate(end_entity) else {
            self.refused.inc();
            return Err(CertificateError::BadEncoding.into());
        };
        let accepted = match &self.allowed {
            Allowed::Committee(committee) => committee.index_of_network_key(&key).is_some(),
            Allowed::Exactly(expected) => *expected == key,
        };
        if accepted {
            Ok(())
        } else {
            self.refused.inc();
            tracing::debug!(peer_key = ?key, "refusing TLS peer whose key is not accepted");
            Err(CertificateError::ApplicationVerificationFailure.into())
        }
    }
}

/// The handshake-signature methods, the same in [`ServerCertVerifier`] and
/// [`ClientCertVerifier`]: TLS 1.2 is refused and TLS 1.3 signatures are checked with the
/// provider's algorithms, of which only ed25519 is offered.
macro_rules! handshake_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not supported".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_methods!();
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn certificate_carries_the_network_key() {
        let kp = KeyPair::generate(&mut StdRng::seed_from_u64(7));
        let identity = TlsIdentity::new(&kp).unwrap();
        assert_eq!(
            public_key_of_certificate(identity.certificate()).unwrap(),
            kp.public()
        );
    }

    #[test]
    fn garbage_certificates_are_errors_not_panics() {
        let kp = KeyPair::generate(&mut StdRng::seed_from_u64(8));
        let der = TlsIdentity::new(&kp).unwrap().certificate().to_vec();
        for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(public_key_of_certificate(&CertificateDer::from(&der[..cut])).is_err());
        }
        // Flip every byte once: a parse may succeed only if the key is still a valid one.
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            let _ = public_key_of_certificate(&CertificateDer::from(bad));
        }
    }
}
