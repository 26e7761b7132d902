//! The inbox contract: Rust bindings generated from the committed artifact
//! (`contracts/Inbox.json`, rebuilt by `contracts/build.sh`), so the ABI has one source.

alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    Inbox,
    "contracts/Inbox.json"
);

pub use Inbox::{BatchPosted, ForceIncluded, InboxErrors};
