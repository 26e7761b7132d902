//! Configuration files: the committee, parameters and an authority's keys, each as JSON.
//! Loading validates everything and errors name the file and the offending field.

mod files;
mod parameters;

pub use files::{exposure, read_secret, write_file, PUBLIC_MODE, SECRET_MODE};

pub use parameters::{
    ClientPortParameters, L1BatchParameters, ParameterError, Parameters, RpcParameters,
};

use rand::{CryptoRng, RngCore};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use weft_attest::AttestationKey;
use weft_types::{Authority, Committee, CommitteeFile, EthAddress, KeyPair, WorkerId};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A private key file others could read or change.
    #[error("{path}: refused: {reason}")]
    Exposed { path: PathBuf, reason: String },
    /// The file is not valid JSON for its type; `field` is the path into the document.
    #[error("{path}: field `{field}`: {reason}")]
    Parse {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// The file parsed but a value is not acceptable.
    #[error("{path}: field `{field}`: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

impl ConfigError {
    /// The offending field, for parse and validation errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Parse { field, .. } | Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_json(path, &text)
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ConfigError::Parse {
            path: path.to_owned(),
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            reason: e.into_inner().to_string(),
        }
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T, private: bool) -> Result<(), ConfigError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ConfigError::Write {
        path: path.to_owned(),
        source: e.into(),
    })?;
    text.push('\n');
    let mode = if private { SECRET_MODE } else { PUBLIC_MODE };
    write_file(path, text.as_bytes(), mode)
}

pub fn load_committee(path: &Path) -> Result<Committee, ConfigError> {
    let file: CommitteeFile = read_json(path)?;
    Committee::new(file).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        field: e.field,
        reason: e.reason,
    })
}

pub fn save_committee(path: &Path, committee: &CommitteeFile) -> Result<(), ConfigError> {
    write_json(path, committee, false)
}

pub fn load_parameters(path: &Path) -> Result<Parameters, ConfigError> {
    let params: Parameters = read_json(path)?;
    params.validate().map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        field: e.field.to_string(),
        reason: e.reason,
    })?;
    Ok(params)
}

pub fn save_parameters(path: &Path, params: &Parameters) -> Result<(), ConfigError> {
    write_json(path, params, false)
}

/// An authority's private keys.
#[derive(Debug)]
pub struct Keys {
    pub protocol: KeyPair,
    pub network: KeyPair,
    /// Signs the attestations of committed sub-DAGs (secp256k1).
    pub attestation: AttestationKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Hex of the 32-byte ed25519 seed.
    protocol_key: String,
    network_key: String,
    /// Hex of the 32-byte secp256k1 secret.
    attestation_key: String,
    /// Public halves, for operators assembling a committee file; checked on load.
    protocol_public_key: String,
    network_public_key: String,
    attestation_address: EthAddress,
}

impl Keys {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self {
            protocol: KeyPair::generate(rng),
            network: KeyPair::generate(rng),
            attestation: AttestationKey::generate(rng),
        }
    }

    pub fn copy(&self) -> Self {
        Self {
            protocol: self.protocol.copy(),
            network: self.network.copy(),
            attestation: self.attestation.copy(),
        }
    }
}

pub fn load_keys(path: &Path) -> Result<Keys, ConfigError> {
    let file: KeyFile = parse_json(path, &read_secret(path)?)?;
    let invalid = |field: &str, reason: String| ConfigError::Invalid {
        path: path.to_owned(),
        field: field.into(),
        reason,
    };
    let secret = |field: &str, hex_secret: &str| -> Result<[u8; 32], ConfigError> {
        hex::decode(hex_secret)
            .map_err(|e| invalid(field, format!("not hex: {e}")))?
            .try_into()
            .map_err(|b: Vec<u8>| invalid(field, format!("must be 32 bytes, got {}", b.len())))
    };
    let mismatch =
        |public_field: &str| invalid(public_field, "does not match the private key".into());
    let parse = |field: &str, hex_seed: &str, public_field: &str, public: &str| {
        let kp = KeyPair::from_seed(&secret(field, hex_seed)?)
            .map_err(|e| invalid(field, e.to_string()))?;
        if kp.public().to_hex() != public {
            return Err(mismatch(public_field));
        }
        Ok(kp)
    };
    Ok(Keys {
        protocol: parse(
            "protocol_key",
            &file.protocol_key,
            "protocol_public_key",
            &file.protocol_public_key,
        )?,
        network: parse(
            "network_key",
            &file.network_key,
            "network_public_key",
            &file.network_public_key,
        )?,
        attestation: {
            let key =
                AttestationKey::from_bytes(&secret("attestation_key", &file.attestation_key)?)
                    .map_err(|e| invalid("attestation_key", e.to_string()))?;
            if key.address() != file.attestation_address {
                return Err(mismatch("attestation_address"));
            }
            key
        },
    })
}

pub fn save_keys(path: &Path, keys: &Keys) -> Result<(), ConfigError> {
    let file = KeyFile {
        protocol_key: hex::encode(keys.protocol.seed()),
        network_key: hex::encode(keys.network.seed()),
        attestation_key: hex::encode(keys.attestation.to_bytes()),
        protocol_public_key: keys.protocol.public().to_hex(),
        network_public_key: keys.network.public().to_hex(),
        attestation_address: keys.attestation.address(),
    };
    write_json(path, &file, true)
}

/// A committee of `authorities` on 127.0.0.1, each with `workers` workers. Ports are assigned
/// from `base_port` upwards: per authority one primary port, then per worker a worker-to-worker
/// port and a transaction port. The caller checks that the ports fit below 65536
/// (`weft committee new` does, with an error naming `--base-port`).
pub fn local_committee<R: RngCore + CryptoRng>(
    authorities: usize,
    workers: u32,
    base_port: u16,
    rng: &mut R,
) -> (Vec<Keys>, CommitteeFile) {
    let hosts = vec![std::net::IpAddr::from([127, 0, 0, 1]); authorities];
    committee_on(&hosts, workers, base_port, rng)
}

/// A committee with authority `i` on `hosts[i]`, each with `workers` workers, ports laid out as
/// [`local_committee`] does; authorities on a host of their own all use the ports from
/// `base_port` (so that containers of one committee look alike), those sharing a host the
/// next free ones.
pub fn committee_on<R: RngCore + CryptoRng>(
    hosts: &[std::net::IpAddr],
    workers: u32,
    base_port: u16,
    rng: &mut R,
) -> (Vec<Keys>, CommitteeFile) {
    let per_authority = 1 + 2 * workers as u16;
    // Attestation keys are drawn after all the others, so that a seed gives the same protocol
    // and network keys (hence the same committee order) as before they existed.
    let pairs: Vec<(KeyPair, KeyPair)> = hosts
        .iter()
        .map(|_| (KeyPair::generate(rng), KeyPair::generate(rng)))
        .collect();
    let keys: Vec<Keys> = pairs
        .into_iter()
        .map(|(protocol, network)| Keys {
            protocol,
            network,
            attestation: AttestationKey::generate(rng),
        })
        .collect();
    let authorities = keys
        .iter()
        .zip(hosts)
        .enumerate()
        .map(|(i, (k, host))| {
            let before = hosts[..i].iter().filter(|h| *h == host).count() as u16;
            let base = base_port + before * per_authority;
            let addr = |port: u16| SocketAddr::new(*host, port);
            let worker_port = |w: WorkerId, offset: u16| base + 1 + 2 * w as u16 + offset;
            Authority {
                protocol_key: k.protocol.public(),
                network_key: k.network.public(),
                attestation_address: k.attestation.address(),
                stake: 1,
                primary_address: addr(base),
                worker_addresses: (0..workers)
                    .map(|w| (w, addr(worker_port(w, 0))))
                    .collect::<BTreeMap<_, _>>(),
                transaction_addresses: (0..workers).map(|w| (w, addr(worker_port(w, 1)))).collect(),
            }
        })
        .collect();
    (
        keys,
        CommitteeFile {
            epoch: 0,
            authorities,
        },
    )
}
