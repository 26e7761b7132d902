//! The worker: client transaction ingress, batch making, batch dissemination to the same-id
//! workers of other authorities, and batch sync (issue #3). Empty until then.
