//! Shared helpers live in tests/tests/support; this crate has no library code.
