//! Integration tests of the HTTP server: the admin API through the router
//! (`oneshot`, no socket) and the server runtime over real sockets.
//!
//! Modules carry `#[cfg(test)]` so clippy treats their helpers as test code.

#[cfg(test)]
mod attacks;
#[cfg(test)]
mod audit;
#[cfg(test)]
mod authzen;
#[cfg(test)]
mod client_keys;
#[cfg(test)]
mod credentials;
#[cfg(test)]
mod delegation;
#[cfg(test)]
mod delegation_admin;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod identities;
#[cfg(test)]
mod policies;
#[cfg(test)]
mod requests;
mod serve;
#[cfg(test)]
mod service;
#[cfg(test)]
mod startup_delegation;
#[cfg(test)]
mod tokens;
#[cfg(test)]
mod trusted;
