//! One module per command group. Each turns parsed arguments into API
//! calls and prints the answer; none holds business rules.

pub(crate) mod audit;
pub(crate) mod credential;
pub(crate) mod delegate;
pub(crate) mod identity;
pub(crate) mod keys;
pub(crate) mod migrate;
pub(crate) mod policy;
pub(crate) mod revoke;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod trace;
