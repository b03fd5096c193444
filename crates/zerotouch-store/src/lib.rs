//! zerotouch-store: the registry.
