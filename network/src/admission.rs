//! How many unauthenticated sockets one source may hold at once. A stranger can open as many
//! connections as it likes; what it must not do is take every slot a server has, so each
//! server that accepts strangers (the TLS handshake here, the worker's client port) counts the
//! slots of each source and refuses one past its share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a per-source limit counts against: an IPv4 address, or an IPv6 /64 prefix (one host
/// usually holds a whole /64, so a limit per IPv6 address would limit nobody).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    V6Prefix(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.into()),
            IpAddr::V6(v6) => Source::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Slots held per source, at most `per_source` each. Cheap to clone; clones share the count.
#[derive(Clone, Debug)]
pub struct SourceSlots {
    per_source: usize,
    held: Arc<Mutex<HashMap<Source, usize>>>,
}

impl SourceSlots {
    pub fn new(per_source: usize) -> Self {
        Self {
            per_source,
            held: Arc::default(),
        }
    }

    /// A slot for `ip`'s source, held until the returned guard is dropped; `None` if that
    /// source holds `per_source` already.
    pub fn try_take(&self, ip: IpAddr) -> Option<SourceSlot> {
        let source = Source::of(ip);
        let mut held = self.lock();
        let count = held.entry(source).or_default();
        if *count >= self.per_source {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            slots: self.clone(),
            source,
        })
    }

    /// Slots `ip`'s source holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.lock().get(&Source::of(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Source, usize>> {
        // Every update leaves the map consistent, so a poisoned lock is still usable.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sources holding at least one slot (the map never grows past them).
    pub fn sources(&self) -> usize {
        self.lock().len()
    }
}

/// One slot of a source; dropping it frees the slot.
#[derive(Debug)]
pub struct SourceSlot {
    slots: SourceSlots,
    source: Source,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(count) = held.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_share_and_dropping_a_slot_frees_it() {
        let slots = SourceSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none(), "a third slot for one source");
        let _other = slots.try_take(b).expect("another source is not affected");
        drop(first);
        assert_eq!(slots.held(a), 1);
        assert!(slots.try_take(a).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_mapped_ipv4_is_its_ipv4() {
        let slots = SourceSlots::new(1);
        let _held = slots.try_take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(slots
            .try_take("2001:db8:1:2:ffff::9".parse().unwrap())
            .is_none());
        assert!(slots.try_take("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = slots.try_take("192.0.2.7".parse().unwrap()).unwrap();
        assert!(slots
            .try_take("::ffff:192.0.2.7".parse().unwrap())
            .is_none());
    }

    #[test]
    fn the_map_forgets_sources_that_hold_nothing() {
        let slots = SourceSlots::new(4);
        for i in 0..100u8 {
            drop(slots.try_take(IpAddr::from([10, 0, 1, i])).unwrap());
        }
        assert_eq!(slots.sources(), 0);
    }
}
