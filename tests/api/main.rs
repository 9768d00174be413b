//! Integration tests: the real server on port 0, a fresh database each.
//! One binary for the whole suite, so it links once.

mod helpers;

mod cli;
mod jwks;
mod refresh;
mod token;
