//! Signing keys: the JWKS, rotation, the key lifecycle across instances and restarts, independent verification (PyJWT).

pub(crate) mod jwks;
pub(crate) mod jwks_pyjwt;
pub(crate) mod keys_instances;
pub(crate) mod keys_lifecycle;
pub(crate) mod keys_rotation;
pub(crate) mod keys_startup;
