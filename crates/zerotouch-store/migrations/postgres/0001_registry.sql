-- zerotouch registry, schema 1 (PostgreSQL). Keep in step with migrations/sqlite.
-- Portable types only (TEXT, BIGINT) so the Rust code is identical on both backends.
-- Secrets (private keys, PSKs, profile credentials) are sealed ciphertext in TEXT columns.

CREATE TABLE registry_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    -- Bumped by every change that can alter the allowlist or a device's configuration.
    change_counter BIGINT NOT NULL,
    -- Last audit id handed out; taken under the row lock so ids commit in order, gap-free.
    audit_seq BIGINT NOT NULL
);
INSERT INTO registry_state (id, change_counter, audit_seq) VALUES (1, 0, 0);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE fleet_keys (
    suite BIGINT PRIMARY KEY,
    owner_public TEXT NOT NULL,
    owner_secret TEXT NOT NULL,
    configurator_public TEXT NOT NULL,
    configurator_secret TEXT NOT NULL,
    certificate TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE profiles (
    name TEXT PRIMARY KEY,
    networks TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE devices (
    key_hash TEXT PRIMARY KEY,
    suite BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    label TEXT UNIQUE,
    profile TEXT REFERENCES profiles (name),
    overrides TEXT,
    state TEXT NOT NULL CHECK (state IN ('allowed', 'provisioning', 'provisioned', 'failed', 'revoked')),
    failure_reason TEXT,
    expires_at BIGINT,
    last_mac TEXT,
    last_event TEXT,
    last_event_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    provisioned_at BIGINT,
    provision_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_profile ON devices (profile);
CREATE INDEX devices_state ON devices (state);

CREATE TABLE device_psks (
    key_hash TEXT PRIMARY KEY REFERENCES devices (key_hash) ON DELETE CASCADE,
    psk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Refused announcements: one audit row per key per window, the rest counted here.
CREATE TABLE refusals (
    key_hash TEXT PRIMARY KEY,
    last_audit_at BIGINT NOT NULL,
    suppressed BIGINT NOT NULL
);

CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    key_hash TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    configurator TEXT
);
CREATE INDEX audit_key_hash ON audit (key_hash, id);

-- The audit log is append-only.
CREATE FUNCTION zerotouch_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the zerotouch audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION zerotouch_audit_append_only();
