//! The checks every received message goes through before the core sees it
//! (`Header::verify`, `Vote::verify`, `Certificate::verify`), memoised per run: the same
//! message reaching n − 1 authorities is verified once. Signature checks dominate the cost of a
//! run, and a memo keyed by the whole message (compared for equality on a hit) gives the same
//! answers as verifying every copy.

use std::collections::HashMap;
use weft_types::{
    AuthorityIndex, Certificate, CertificateDigest, Committee, Header, HeaderDigest, MessageError,
    Vote,
};

/// Lookups only: nothing here is iterated, so hash order cannot reach the event trace.
#[derive(Default)]
pub struct Verifier {
    headers: HashMap<HeaderDigest, Header>,
    votes: HashMap<(HeaderDigest, AuthorityIndex), Vote>,
    certificates: HashMap<CertificateDigest, Certificate>,
}

impl Verifier {
    pub fn header(&mut self, c: &Committee, h: &Header) -> Result<(), MessageError> {
        if self.headers.get(&h.digest()) == Some(h) {
            return Ok(());
        }
        h.verify(c, true)?;
        self.headers.insert(h.digest(), h.clone());
        Ok(())
    }

    pub fn vote(&mut self, c: &Committee, v: &Vote) -> Result<(), MessageError> {
        let key = (v.header_digest, v.author);
        if self.votes.get(&key) == Some(v) {
            return Ok(());
        }
        v.verify(c)?;
        self.votes.insert(key, v.clone());
        Ok(())
    }

    pub fn certificate(&mut self, c: &Committee, x: &Certificate) -> Result<(), MessageError> {
        if self.certificates.get(&x.digest()) == Some(x) {
            return Ok(());
        }
        x.verify(c)?;
        self.certificates.insert(x.digest(), x.clone());
        Ok(())
    }
}
