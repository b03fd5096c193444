//! The secret key from `ZEROTOUCH_SECRET_KEY` (its own test binary: it changes the
//! process environment).

use zerotouch_store::{Registry, SecretKeySource};

#[tokio::test]
async fn the_secret_key_can_come_from_the_environment_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    // SAFETY: this is the only test of this binary, and no database connection (whose
    // worker threads could read the environment) exists yet.
    unsafe { std::env::set_var(zerotouch_store::SECRET_KEY_ENV, "ab".repeat(32)) };
    let opened = Registry::open(path.to_str().expect("utf-8"), SecretKeySource::Auto).await;
    if let Ok(registry) = &opened {
        registry.close().await;
    }
    // SAFETY: as above; the connections are closed again.
    unsafe { std::env::remove_var(zerotouch_store::SECRET_KEY_ENV) };
    opened.expect("open with the key from the environment");
    assert!(
        !Registry::default_key_file(&path).exists(),
        "no key file when the variable is set"
    );
    Registry::open(
        path.to_str().expect("utf-8"),
        SecretKeySource::Key(zeroize::Zeroizing::new([0xab; 32])),
    )
    .await
    .expect("the same key given directly");
}
