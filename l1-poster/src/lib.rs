//! Posts the ordered stream to Ethereum L1 and reads forced-inclusion transactions back
//! (issue #6). Empty until then.
