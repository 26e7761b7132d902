//! The primary: proposes headers, votes, forms certificates and builds the certified DAG
//! (issue #3). Empty until then; the workspace lists it so the crate graph is fixed early.
