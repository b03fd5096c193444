//! zerotouch-link: real links for zerotouch frames.
