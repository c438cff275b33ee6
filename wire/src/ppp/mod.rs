//! PPP (in progress)
