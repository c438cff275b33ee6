//! l2xdp-tests: end-to-end tests on real kernels (network namespaces joined by veth pairs).
//!
//! Not built yet: the end-to-end tests arrive with the control plane and the fast path.
