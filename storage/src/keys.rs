//! Keys are encoded big-endian so that RocksDB's byte order is their numeric order and range
//! scans by round work.

use weft_types::{
    AuthorityIndex, BatchDigest, CertificateDigest, Digest, HeaderDigest, Round, WorkerId,
};

pub trait Key: Sized {
    fn to_key(&self) -> Vec<u8>;
    /// `None` if the bytes are not a key of this type (a corrupt store).
    fn from_key(bytes: &[u8]) -> Option<Self>;
}

macro_rules! digest_key {
    ($($t:ident),*) => {$(
        impl Key for $t {
            fn to_key(&self) -> Vec<u8> {
                self.0 .0.to_vec()
            }
            fn from_key(bytes: &[u8]) -> Option<Self> {
                Some($t(Digest(bytes.try_into().ok()?)))
            }
        }
    )*};
}
digest_key!(BatchDigest, HeaderDigest, CertificateDigest);

impl Key for u64 {
    fn to_key(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl Key for AuthorityIndex {
    fn to_key(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        Some(AuthorityIndex(u16::from_be_bytes(bytes.try_into().ok()?)))
    }
}

impl Key for (Round, AuthorityIndex) {
    fn to_key(&self) -> Vec<u8> {
        let mut k = self.0.to_be_bytes().to_vec();
        k.extend_from_slice(&self.1 .0.to_be_bytes());
        k
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 10 {
            return None;
        }
        Some((
            u64::from_be_bytes(bytes[..8].try_into().ok()?),
            AuthorityIndex(u16::from_be_bytes(bytes[8..].try_into().ok()?)),
        ))
    }
}

/// Two big-endian words: keys ordered by the first, then the second.
impl Key for (u64, u64) {
    fn to_key(&self) -> Vec<u8> {
        let mut k = self.0.to_be_bytes().to_vec();
        k.extend_from_slice(&self.1.to_be_bytes());
        k
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 16 {
            return None;
        }
        Some((
            u64::from_be_bytes(bytes[..8].try_into().ok()?),
            u64::from_be_bytes(bytes[8..].try_into().ok()?),
        ))
    }
}

impl Key for String {
    fn to_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl Key for (BatchDigest, WorkerId) {
    fn to_key(&self) -> Vec<u8> {
        let mut k = self.0 .0 .0.to_vec();
        k.extend_from_slice(&self.1.to_be_bytes());
        k
    }
    fn from_key(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 36 {
            return None;
        }
        Some((
            BatchDigest(Digest(bytes[..32].try_into().ok()?)),
            WorkerId::from_be_bytes(bytes[32..].try_into().ok()?),
        ))
    }
}
