//! The encrypted, ordered, reliable message channel over 250-byte frames: fragmentation,
//! per-fragment AEAD with counter nonces, selective acknowledgement and retransmission,
//! duplicate suppression. Fixed-size buffers (no allocator).
