//! The primary: proposes headers, votes, forms certificates and builds the certified DAG.
//! Its pure bookkeeping (`dag`) and the durable vote record (`votes`) are here; the actors
//! around them arrive with issue #3.

pub mod dag;
pub mod votes;
