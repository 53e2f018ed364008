//! Shared helpers for the backend suite.
