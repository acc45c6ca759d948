//! The PostgreSQL backend: one database shared by several Handoff nodes.
//! Implemented in this module's children; see `migrations/postgres/`.
