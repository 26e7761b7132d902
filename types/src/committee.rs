//! The committee: who the authorities are, their stake, keys and addresses, and the two
//! stake thresholds every protocol rule is phrased in.

use crate::crypto::{EthAddress, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use thiserror::Error;

pub type Stake = u64;
pub type Epoch = u64;
pub type WorkerId = u32;

/// Position of an authority in the committee (sorted by protocol key); what messages carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuthorityIndex(pub u16);

impl std::fmt::Display for AuthorityIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "A{}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// Signs headers and votes.
    pub protocol_key: PublicKey,
    /// Authenticates the authority's primary and workers in TLS handshakes.
    pub network_key: PublicKey,
    /// Signs the attestations of committed sub-DAGs (secp256k1, so that L1 checks them with
    /// `ecrecover`): the address of that key.
    pub attestation_address: EthAddress,
    pub stake: Stake,
    pub primary_address: SocketAddr,
    /// Worker-to-worker address of each worker.
    pub worker_addresses: BTreeMap<WorkerId, SocketAddr>,
    /// Where clients send transactions to each worker.
    pub transaction_addresses: BTreeMap<WorkerId, SocketAddr>,
}

/// The committee as it is written in a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeFile {
    pub epoch: Epoch,
    pub authorities: Vec<Authority>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct CommitteeError {
    /// Path of the offending field, e.g. `authorities[2].stake`.
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> CommitteeError {
    CommitteeError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A validated committee. Authorities are ordered by protocol key; `AuthorityIndex` is the
/// position in that order, so every node assigns the same index to the same authority.
#[derive(Clone, Debug)]
pub struct Committee {
    epoch: Epoch,
    authorities: Vec<Authority>,
    total_stake: Stake,
    quorum_threshold: Stake,
    validity_threshold: Stake,
    by_protocol_key: HashMap<PublicKey, AuthorityIndex>,
    by_network_key: HashMap<PublicKey, AuthorityIndex>,
    num_workers: u32,
}

impl Committee {
    pub const MAX_AUTHORITIES: usize = 1024;
    pub const MAX_WORKERS: usize = 256;

    /// Validates a committee file. Errors name the offending field.
    pub fn new(file: CommitteeFile) -> Result<Self, CommitteeError> {
        let CommitteeFile { epoch, authorities } = file;
        if authorities.is_empty() {
            return Err(err("authorities", "must list at least one authority"));
        }
        if authorities.len() > Self::MAX_AUTHORITIES {
            return Err(err(
                "authorities",
                format!(
                    "at most {} authorities are supported",
                    Self::MAX_AUTHORITIES
                ),
            ));
        }
        let num_workers = authorities[0].worker_addresses.len();
        let mut total_stake: Stake = 0;
        let mut keys = HashSet::new();
        let mut addresses = HashSet::new();
        let mut attesters = HashSet::new();
        for (i, a) in authorities.iter().enumerate() {
            let at = |f: &str| format!("authorities[{i}].{f}");
            if a.stake == 0 {
                return Err(err(at("stake"), "must be positive"));
            }
            total_stake = total_stake
                .checked_add(a.stake)
                .filter(|s| *s <= Stake::MAX / 3)
                .ok_or_else(|| err(at("stake"), "total stake overflows"))?;
            if !keys.insert(a.protocol_key.clone()) {
                return Err(err(at("protocol_key"), "duplicate key"));
            }
            if !keys.insert(a.network_key.clone()) {
                return Err(err(at("network_key"), "duplicate key"));
            }
            if !attesters.insert(a.attestation_address) {
                return Err(err(at("attestation_address"), "duplicate address"));
            }
            if a.worker_addresses.is_empty() || a.worker_addresses.len() > Self::MAX_WORKERS {
                return Err(err(
                    at("worker_addresses"),
                    format!("must list 1 to {} workers", Self::MAX_WORKERS),
                ));
            }
            let expected: Vec<WorkerId> = (0..num_workers as WorkerId).collect();
            let ids: Vec<WorkerId> = a.worker_addresses.keys().copied().collect();
            if ids != expected {
                return Err(err(
                    at("worker_addresses"),
                    format!("worker ids must be 0..{num_workers} like every other authority's, got {ids:?}"),
                ));
            }
            let tx_ids: Vec<WorkerId> = a.transaction_addresses.keys().copied().collect();
            if tx_ids != expected {
                return Err(err(
                    at("transaction_addresses"),
                    format!("must have one address per worker id 0..{num_workers}, got {tx_ids:?}"),
                ));
            }
            let all = std::iter::once(("primary_address".to_string(), a.primary_address))
                .chain(
                    a.worker_addresses
                        .iter()
                        .map(|(id, s)| (format!("worker_addresses.{id}"), *s)),
                )
                .chain(
                    a.transaction_addresses
                        .iter()
                        .map(|(id, s)| (format!("transaction_addresses.{id}"), *s)),
                );
            for (field, addr) in all {
                if !addresses.insert(addr) {
                    return Err(err(at(&field), format!("address {addr} is used twice")));
                }
            }
        }
        let mut authorities = authorities;
        authorities.sort_by(|a, b| a.protocol_key.cmp(&b.protocol_key));
        let index = |i: usize| AuthorityIndex(i as u16);
        Ok(Self {
            epoch,
            by_protocol_key: authorities
                .iter()
                .enumerate()
                .map(|(i, a)| (a.protocol_key.clone(), index(i)))
                .collect(),
            by_network_key: authorities
                .iter()
                .enumerate()
                .map(|(i, a)| (a.network_key.clone(), index(i)))
                .collect(),
            authorities,
            total_stake,
            quorum_threshold: 2 * total_stake / 3 + 1,
            validity_threshold: total_stake / 3 + 1,
            num_workers: num_workers as u32,
        })
    }

    pub fn to_file(&self) -> CommitteeFile {
        CommitteeFile {
            epoch: self.epoch,
            authorities: self.authorities.clone(),
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn size(&self) -> usize {
        self.authorities.len()
    }

    pub fn num_workers(&self) -> u32 {
        self.num_workers
    }

    pub fn total_stake(&self) -> Stake {
        self.total_stake
    }

    /// Stake needed for a certificate or to advance a round: ≥ 2S/3 + 1 (2f+1 with equal stake).
    pub fn quorum_threshold(&self) -> Stake {
        self.quorum_threshold
    }

    /// Stake that contains at least one honest authority: ≥ S/3 + 1 (f+1 with equal stake).
    pub fn validity_threshold(&self) -> Stake {
        self.validity_threshold
    }

    /// Looks up an index taken from a message; `None` for one outside the committee.
    pub fn authority(&self, index: AuthorityIndex) -> Option<&Authority> {
        self.authorities.get(index.0 as usize)
    }

    pub fn stake(&self, index: AuthorityIndex) -> Stake {
        self.authority(index).map_or(0, |a| a.stake)
    }

    pub fn authorities(&self) -> impl Iterator<Item = (AuthorityIndex, &Authority)> {
        self.authorities
            .iter()
            .enumerate()
            .map(|(i, a)| (AuthorityIndex(i as u16), a))
    }

    pub fn index_of_protocol_key(&self, key: &PublicKey) -> Option<AuthorityIndex> {
        self.by_protocol_key.get(key).copied()
    }

    pub fn index_of_network_key(&self, key: &PublicKey) -> Option<AuthorityIndex> {
        self.by_network_key.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;
    use rand::{rngs::StdRng, SeedableRng};

    fn file(n: usize, stake: &[Stake]) -> CommitteeFile {
        let mut rng = StdRng::seed_from_u64(9);
        CommitteeFile {
            epoch: 0,
            authorities: (0..n)
                .map(|i| {
                    let port = 4000 + 10 * i as u16;
                    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
                    Authority {
                        protocol_key: KeyPair::generate(&mut rng).public(),
                        network_key: KeyPair::generate(&mut rng).public(),
                        attestation_address: EthAddress([i as u8 + 1; 20]),
                        stake: stake[i],
                        primary_address: addr(port),
                        worker_addresses: [(0, addr(port + 1))].into(),
                        transaction_addresses: [(0, addr(port + 2))].into(),
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn thresholds_match_3f_plus_1() {
        for (n, quorum, validity) in [(4, 3, 2), (7, 5, 3), (10, 7, 4), (1, 1, 1)] {
            let c = Committee::new(file(n, &vec![1; n])).unwrap();
            assert_eq!(
                (c.quorum_threshold(), c.validity_threshold()),
                (quorum, validity),
                "n={n}"
            );
        }
        // Stake-weighted: S = 10, quorum = 7, validity = 4.
        let c = Committee::new(file(4, &[1, 2, 3, 4])).unwrap();
        assert_eq!(
            (
                c.total_stake(),
                c.quorum_threshold(),
                c.validity_threshold()
            ),
            (10, 7, 4)
        );
    }

    #[test]
    fn bad_committees_name_the_field() {
        let e = Committee::new(file(4, &[1, 0, 1, 1])).unwrap_err();
        assert_eq!(e.field, "authorities[1].stake");

        let mut f = file(4, &[1; 4]);
        f.authorities[2].network_key = f.authorities[0].protocol_key.clone();
        assert_eq!(
            Committee::new(f).unwrap_err().field,
            "authorities[2].network_key"
        );

        let mut f = file(4, &[1; 4]);
        f.authorities[3]
            .worker_addresses
            .insert(1, "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            Committee::new(f).unwrap_err().field,
            "authorities[3].worker_addresses"
        );

        let mut f = file(4, &[1; 4]);
        f.authorities[1].primary_address = f.authorities[0].primary_address;
        assert_eq!(
            Committee::new(f).unwrap_err().field,
            "authorities[1].primary_address"
        );

        assert_eq!(
            Committee::new(file(0, &[])).unwrap_err().field,
            "authorities"
        );
    }

    #[test]
    fn index_is_by_sorted_protocol_key() {
        let f = file(4, &[1; 4]);
        let c = Committee::new(f.clone()).unwrap();
        let mut keys: Vec<PublicKey> = f
            .authorities
            .iter()
            .map(|a| a.protocol_key.clone())
            .collect();
        keys.sort();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(c.index_of_protocol_key(k), Some(AuthorityIndex(i as u16)));
        }
        assert!(c.authority(AuthorityIndex(4)).is_none());
        assert_eq!(c.stake(AuthorityIndex(999)), 0);
    }
}
