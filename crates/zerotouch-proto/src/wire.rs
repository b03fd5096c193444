//! Frame formats as zero-copy views over byte slices with explicit `check_len`, as smoltcp
//! does. Canonical: one encoding per message; decoders never panic.
