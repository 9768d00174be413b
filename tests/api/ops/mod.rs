//! Running tessera: several instances on one database, metrics and readiness, the OpenAPI contract.

pub(crate) mod instances;
pub(crate) mod observability;
pub(crate) mod openapi;
