//! Nothing: this package exists for its bench (`benches/machine.rs`).
