//! The primary: proposes headers, votes, forms certificates and builds the certified DAG.
//! Its pure bookkeeping (`dag`) is here; the actors around it arrive with issue #3.

pub mod dag;
