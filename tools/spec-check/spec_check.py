#!/usr/bin/env python3
"""An independent implementation of PROTOCOL.md, written from the text alone.

It reads the section 10 test vectors out of PROTOCOL.md and, from the secrets they list,
re-derives every public key, key hash, owner id, the shared secret and every handshake and
application key (section 6.1), then parses, decrypts and verifies every frame of both
vector sessions (sections 4, 4.1-4.6, 7), checks the certificate (section 5) and every
signature, and that deterministic signing reproduces the signature bytes. A tampered copy
of every frame must fail its tag, and a self-test first changes one hex digit of every
vector value (first, middle, last) and requires each change to be caught, so the checker
is known to be able to fail.

Only the `cryptography` package is used (primitives, never zerotouch code).
Usage: python3 tools/spec-check/spec_check.py [PROTOCOL.md]. Exit 0 when every check
passes, 1 with the failed checks listed otherwise.
"""

import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

# Section 4: common header.
MAGIC = 0x5A
VERSION = 0x02
ANNOUNCE, CHALLENGE, RESPONSE, DATA, ACK = 1, 2, 3, 4, 5
# Section 4.6: channel message types.
MSG_CONFIG, MSG_STATUS = 1, 2
# Section 4.4 / 4.5 flags.
FLAG_END = 0x01
FLAG_COMPLETE = 0x01
FRAGMENT_MAX = 219
TAG = 16
SIG = 64
# Section 3: DER SubjectPublicKeyInfo prefixes.
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")
SPKI_P256 = bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200")


def sha256(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    for part in parts:
        digest.update(part)
    return digest.finalize()


class Failures:
    """Collects failed checks (so one run reports all of them)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.passed = 0

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.items.append(f"{what}{': ' + detail if detail else ''}")
        return ok

    def equal(self, what: str, got: bytes | int, want: bytes | int) -> bool:
        def show(v: bytes | int) -> str:
            return v.hex() if isinstance(v, bytes) else str(v)

        return self.check(what, got == want, f"got {show(got)}, want {show(want)}")


@dataclass(frozen=True)
class Suite:
    """Section 3: what one cipher suite uses."""

    id: int
    public_len: int  # P
    key_len: int  # Nk

    def identity_public(self, secret: bytes) -> bytes:
        if self.id == 1:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
            return key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        return p256_private(secret).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def ephemeral_public(self, secret: bytes) -> bytes:
        if self.id == 1:
            key = x25519.X25519PrivateKey.from_private_bytes(secret)
            return key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        return self.identity_public(secret)

    def ecdh(self, secret: bytes, peer_public: bytes) -> bytes:
        if self.id == 1:
            key = x25519.X25519PrivateKey.from_private_bytes(secret)
            return key.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_public)
        return p256_private(secret).exchange(ec.ECDH(), peer)

    def key_hash(self, public: bytes) -> bytes:
        return sha256(SPKI_ED25519 if self.id == 1 else SPKI_P256, public)

    def sign(self, secret: bytes, message: bytes) -> bytes:
        if self.id == 1:
            return ed25519.Ed25519PrivateKey.from_private_bytes(secret).sign(message)
        der = p256_private(secret).sign(
            message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        )
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, public: bytes, signature: bytes, message: bytes) -> bool:
        try:
            if self.id == 1:
                ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
            else:
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            return True
        except (InvalidSignature, ValueError):
            return False

    def aead(self, key: bytes):
        return ChaCha20Poly1305(key) if self.id == 1 else AESGCM(key)


SUITES = {1: Suite(1, 32, 32), 2: Suite(2, 33, 16)}


def p256_private(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


# --- Section 6.1: key schedule ---------------------------------------------------------


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    mac = hmac.HMAC(salt, hashes.SHA256())
    mac.update(ikm)
    return mac.finalize()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


@dataclass
class DirectionKeys:
    key: bytes
    iv: bytes


def derive(prk: bytes, stage: str, side: str, th: bytes, suite: Suite) -> DirectionKeys:
    """`"zt <stage> <side> key" ‖ TH` and `"zt <stage> <side> iv" ‖ TH`."""
    label = f"zt {stage} {side} ".encode()
    return DirectionKeys(
        hkdf_expand(prk, label + b"key" + th, suite.key_len),
        hkdf_expand(prk, label + b"iv" + th, 12),
    )


def nonce(iv: bytes, kind: int, n: int) -> bytes:
    """nonce(kind, n) = iv XOR (kind(1) ‖ 0(9) ‖ n(2))."""
    mask = bytes([kind]) + bytes(9) + struct.pack(">H", n)
    return bytes(a ^ b for a, b in zip(iv, mask))


# --- Section 10: the vectors as PROTOCOL.md prints them ---------------------------------


def read_vectors(protocol: str) -> dict[int, dict[str, str]]:
    block = re.search(r"<!-- vectors:begin -->\s*```\n(.*?)```", protocol, re.S)
    if not block:
        sys.exit("PROTOCOL.md has no vectors block (<!-- vectors:begin --> ... ```)")
    suites: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in block.group(1).splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "suite":
            current = suites.setdefault(int(words[1]), {})
        elif current is None:
            sys.exit(f"vector line before any 'suite' line: {line}")
        elif words[0].startswith("frame"):
            current[words[0]] = words[-1]  # frameN <dir> <type> <hex>
            current[words[0] + "-label"] = " ".join(words[1:-1])
        else:
            current[words[0]] = words[1]
    return suites


# --- Frame decoding (section 4) ----------------------------------------------------------


def header(f: Failures, name: str, frame: bytes, kind: int, suite: Suite) -> None:
    f.equal(f"{name} magic", frame[0], MAGIC)
    f.equal(f"{name} version", frame[1], VERSION)
    f.equal(f"{name} type", frame[2], kind)
    f.equal(f"{name} suite", frame[3], suite.id)


def open_aead(
    f: Failures, what: str, suite: Suite, key: bytes, nonce_: bytes, sealed: bytes, aad: bytes
) -> bytes | None:
    try:
        return suite.aead(key).decrypt(nonce_, sealed, aad)
    except InvalidTag:
        f.check(f"{what} opens (AEAD tag)", False)
        return None


def tampered_fails(suite: Suite, key: bytes, nonce_: bytes, sealed: bytes, aad: bytes) -> bool:
    """A flipped bit in the ciphertext or the AAD must fail the tag check."""
    flipped = bytearray(sealed)
    flipped[0] ^= 1
    for body, associated in ((bytes(flipped), aad), (sealed, aad[:-1] + bytes([aad[-1] ^ 1]))):
        try:
            suite.aead(key).decrypt(nonce_, body, associated)
            return False
        except InvalidTag:
            pass
    return True


def parse_config_object(f: Failures, name: str, data: bytes) -> None:
    """Section 7: TLV entries, networks first, then settings; checks every rule it states."""
    f.check(f"{name}: at most 8192 bytes", len(data) <= 8192)
    at, networks, seen_setting, keys = 0, 0, False, set()
    while at < len(data):
        if not f.check(f"{name}: entry header at {at} fits", at + 3 <= len(data)):
            return
        kind, length = data[at], struct.unpack(">H", data[at + 1 : at + 3])[0]
        value = data[at + 3 : at + 3 + length]
        if not f.check(f"{name}: entry at {at} fits", len(value) == length):
            return
        if kind == 1:
            f.check(f"{name}: networks before settings", not seen_setting)
            networks += 1
            parse_network(f, f"{name} network {networks}", value)
        elif kind == 2:
            seen_setting = True
            key_len = value[0] if value else 0
            key = value[1 : 1 + key_len]
            f.check(f"{name}: setting key 1..=64", 1 <= key_len <= 64 and len(key) == key_len)
            f.check(f"{name}: setting key unique", key not in keys)
            keys.add(key)
        else:
            f.check(f"{name}: known entry type {kind}", False)
        at += 3 + length
    f.check(f"{name}: 1..=8 networks", 1 <= networks <= 8)


def parse_network(f: Failures, name: str, v: bytes) -> None:
    ssid_len = v[0]
    ssid = v[1 : 1 + ssid_len]
    at = 1 + ssid_len
    security, cred_kind, cred_len = v[at], v[at + 1], v[at + 2]
    cred = v[at + 3 : at + 3 + cred_len]
    at += 3 + cred_len
    hints = v[at]
    at += 1 + (6 if hints & 1 else 0) + (1 if hints & 2 else 0)
    f.check(f"{name}: SSID 1..=32", 1 <= ssid_len <= 32 and len(ssid) == ssid_len)
    f.check(f"{name}: open iff no credential", (security == 0) == (cred_kind == 0))
    if cred_kind == 1:
        f.check(
            f"{name}: passphrase 8..=63 printable ASCII",
            8 <= len(cred) <= 63 and all(0x20 <= c <= 0x7E for c in cred),
        )
    f.check(f"{name}: hint flags known", hints & ~3 == 0)
    f.equal(f"{name}: value length", at, len(v))


# --- One vector session ------------------------------------------------------------------


def check_session(f: Failures, suite: Suite, v: dict[str, str]) -> None:
    P = suite.public_len
    s = f"suite {suite.id}"
    sec = {k: bytes.fromhex(v[k + "-secret"]) for k in ("owner", "configurator", "enrollee")}
    eph_e = bytes.fromhex(v["enrollee-ephemeral-secret"])
    eph_c = bytes.fromhex(v["configurator-ephemeral-secret"])
    frames = [bytes.fromhex(v[f"frame{i}"]) for i in range(1, 8)]
    announce, challenge, response, data_c, ack_e, data_e, ack = frames
    owner_pub = suite.identity_public(sec["owner"])
    conf_pub = suite.identity_public(sec["configurator"])
    enr_pub = suite.identity_public(sec["enrollee"])

    # Section 4.7: frame sizes.
    for name, frame, want in (
        ("Announce", announce, 6 + 2 * P + 9 + SIG),
        ("Challenge", challenge, 181 + 2 * P),
        ("Response", response, 88),
        ("Ack", ack, 31),
        ("Config Ack", ack_e, 31),
    ):
        f.equal(f"{s} {name} length", len(frame), want)
    f.equal(f"{s} 7-frame session bytes", sum(map(len, frames)), 670 if suite.id == 1 else 675)

    # Section 5: the certificate.
    cert = bytes.fromhex(v["certificate"])
    owner_id = suite.key_hash(owner_pub)[:4]
    f.equal(f"{s} cert length", len(cert), 41 + P + 32)
    f.equal(f"{s} cert version", cert[0], 1)
    f.equal(f"{s} cert owner_id", cert[1:5], owner_id)
    not_after = struct.unpack(">I", cert[5:9])[0]
    f.equal(f"{s} cert subject", cert[9 : 9 + P], conf_pub)
    signed = b"zerotouch-cert-v1" + bytes([suite.id]) + cert[1 : 9 + P]
    f.check(f"{s} cert signature verifies", suite.verify(owner_pub, cert[9 + P :], signed))
    f.equal(f"{s} cert signature is deterministic", suite.sign(sec["owner"], signed), cert[9 + P :])
    time_c = int(v["configurator-unix-time"])
    f.check(f"{s} cert unexpired at timeC", time_c <= not_after)

    # Section 4.1: Announce.
    header(f, f"{s} Announce", announce, ANNOUNCE, suite)
    f.equal(f"{s} Announce mode New", announce[4], 0)
    f.equal(f"{s} Announce reason none", announce[5], 0)
    f.equal(f"{s} Announce identity", announce[6 : 6 + P], enr_pub)
    f.equal(f"{s} Announce ephemeral", announce[6 + P : 6 + 2 * P], suite.ephemeral_public(eph_e))
    counter = announce[6 + 2 * P : 6 + 2 * P + 8]
    # The vectors' enrollee runs boot 1 and is answered in its first round.
    f.equal(f"{s} Announce counter = boot 1, round 1", counter, struct.pack(">II", 1, 1))
    # Section 10: the enrollee is answered on channel 6.
    f.equal(f"{s} Announce channel", announce[6 + 2 * P + 8], 6)
    msg_a = b"zerotouch-a-sig-v2" + announce[: 6 + 2 * P + 9]
    sig_a = announce[6 + 2 * P + 9 :]
    f.check(f"{s} sig_A verifies with IdE", suite.verify(enr_pub, sig_a, msg_a))
    f.equal(f"{s} sig_A deterministic", suite.sign(sec["enrollee"], msg_a), sig_a)
    f.check(
        f"{s} sig_A fails on another counter",
        not suite.verify(enr_pub, sig_a, msg_a[:-1] + bytes([msg_a[-1] ^ 1])),
    )

    # Section 4.2: Challenge clear part.
    header(f, f"{s} Challenge", challenge, CHALLENGE, suite)
    sid = challenge[4:8]
    f.check(f"{s} sid non-zero", sid != bytes(4))
    ephc_pub = challenge[24 : 24 + P]
    f.equal(f"{s} Challenge ephemeral", ephc_pub, suite.ephemeral_public(eph_c))
    f.equal(f"{s} Challenge timeC", struct.unpack(">I", challenge[24 + P : 28 + P])[0], time_c)
    ch_clear = challenge[: 28 + P]

    # Section 6.1: shared secret (both sides agree) and handshake keys.
    ss = suite.ecdh(eph_c, announce[6 + P : 6 + 2 * P])
    f.equal(f"{s} ECDH both ways", suite.ecdh(eph_e, ephc_pub), ss)
    prk = hkdf_extract(b"zerotouch-v1" + bytes([suite.id]), ss)
    th1 = sha256(announce, ch_clear)
    hs_c = derive(prk, "hs", "c", th1, suite)
    hs_e = derive(prk, "hs", "e", th1, suite)

    sealed = challenge[28 + P :]
    plain = open_aead(f, f"{s} Challenge", suite, hs_c.key, hs_c.iv, sealed, ch_clear)
    f.check(
        f"{s} Challenge tampered fails",
        tampered_fails(suite, hs_c.key, hs_c.iv, sealed, ch_clear),
    )
    if plain is not None:
        f.equal(f"{s} Challenge carries the certificate", plain[: len(cert)], cert)
        sig_c = plain[len(cert) :]
        f.equal(f"{s} sig_C length", len(sig_c), SIG)
        msg_c = b"zerotouch-c-sig-v1" + sha256(announce, ch_clear, cert)
        f.check(f"{s} sig_C verifies with the subject", suite.verify(conf_pub, sig_c, msg_c))
        f.equal(f"{s} sig_C deterministic", suite.sign(sec["configurator"], msg_c), sig_c)

    # Section 4.3: Response.
    header(f, f"{s} Response", response, RESPONSE, suite)
    f.equal(f"{s} Response sid", response[4:8], sid)
    sealed = response[8:]
    sig_e = open_aead(f, f"{s} Response", suite, hs_e.key, hs_e.iv, sealed, response[:8])
    f.check(
        f"{s} Response tampered fails",
        tampered_fails(suite, hs_e.key, hs_e.iv, sealed, response[:8]),
    )
    if sig_e is not None:
        msg_e = b"zerotouch-e-sig-v1" + sha256(announce, challenge)
        f.check(f"{s} sig_E verifies with IdE", suite.verify(enr_pub, sig_e, msg_e))
        f.equal(f"{s} sig_E deterministic", suite.sign(sec["enrollee"], msg_e), sig_e)

    # Application keys.
    th3 = sha256(announce, challenge, response)
    ap = {"c": derive(prk, "ap", "c", th3, suite), "e": derive(prk, "ap", "e", th3, suite)}
    # A key for one direction or stage must not open the other's frames.
    f.check(f"{s} direction keys differ", ap["c"].key != ap["e"].key != hs_c.key)

    # Section 4.4 + 4.6: the Config message (C -> E, seq 0, END).
    config = open_data(f, f"{s} frame4 Config", suite, ap["c"], data_c, sid, 0, 0, 0)
    if config is not None:
        f.equal(f"{s} Config message type", config[0], MSG_CONFIG)
        f.equal(f"{s} Config owner key", config[1 : 1 + P], owner_pub)
        body = config[1 + P :]
        f.equal(f"{s} Config object", body, bytes.fromhex(v["config-object"]))
        parse_config_object(f, f"{s} config object", body)
        f.check(
            f"{s} Config owner has the cert's owner_id",
            suite.key_hash(config[1 : 1 + P])[:4] == cert[1:5],
        )

    # Section 4.5: the enrollee's Ack of the Config, sent at once (counter 0, ack 1).
    header(f, f"{s} Config Ack", ack_e, ACK, suite)
    f.equal(f"{s} Config Ack sid", ack_e[4:8], sid)
    counter_e, ack_field_e, sack_e = struct.unpack(">HHH", ack_e[8:14])
    f.equal(f"{s} Config Ack counter", counter_e, 0)
    f.equal(f"{s} Config Ack acknowledges the Config", ack_field_e, 1)
    f.equal(f"{s} Config Ack sack", sack_e, 0)
    n_e = nonce(ap["e"].iv, 1, counter_e)
    empty_e = open_aead(f, f"{s} Config Ack", suite, ap["e"].key, n_e, ack_e[15:], ack_e[:15])
    f.check(f"{s} Config Ack plaintext empty", empty_e == b"")

    # The Status message (E -> C, seq 0, END), acknowledging the Config (ack 1).
    status = open_data(f, f"{s} frame5 Status", suite, ap["e"], data_e, sid, 0, 1, 0)
    if status is not None:
        f.equal(f"{s} Status message", status, bytes([MSG_STATUS, 0]))

    # Section 4.5: Ack COMPLETE (C -> E, counter 0, acknowledging the Status).
    header(f, f"{s} Ack", ack, ACK, suite)
    f.equal(f"{s} Ack sid", ack[4:8], sid)
    counter, ack_field, sack = struct.unpack(">HHH", ack[8:14])
    f.equal(f"{s} Ack counter", counter, 0)
    f.equal(f"{s} Ack acknowledges the Status", ack_field, 1)
    f.equal(f"{s} Ack sack", sack, 0)
    f.equal(f"{s} Ack flags COMPLETE", ack[14], FLAG_COMPLETE)
    n = nonce(ap["c"].iv, 1, counter)
    empty = open_aead(f, f"{s} Ack", suite, ap["c"].key, n, ack[15:], ack[:15])
    f.check(f"{s} Ack plaintext empty", empty == b"")
    f.check(f"{s} Ack tampered fails", tampered_fails(suite, ap["c"].key, n, ack[15:], ack[:15]))
    # Kind separation: the Ack does not open under the Data nonce of the same number.
    try:
        suite.aead(ap["c"].key).decrypt(nonce(ap["c"].iv, 0, counter), ack[15:], ack[:15])
        f.check(f"{s} Ack under a Data nonce fails", False)
    except InvalidTag:
        f.check(f"{s} Ack under a Data nonce fails", True)


def open_data(
    f: Failures,
    what: str,
    suite: Suite,
    keys: DirectionKeys,
    frame: bytes,
    sid: bytes,
    seq_want: int,
    ack_want: int,
    sack_want: int,
) -> bytes | None:
    header(f, what, frame, DATA, suite)
    f.equal(f"{what} sid", frame[4:8], sid)
    seq, ack, sack = struct.unpack(">HHH", frame[8:14])
    f.equal(f"{what} seq", seq, seq_want)
    f.equal(f"{what} ack", ack, ack_want)
    f.equal(f"{what} sack", sack, sack_want)
    f.equal(f"{what} flags END", frame[14], FLAG_END)
    n = nonce(keys.iv, 0, seq)
    fragment = open_aead(f, what, suite, keys.key, n, frame[15:], frame[:15])
    f.check(f"{what} tampered fails", tampered_fails(suite, keys.key, n, frame[15:], frame[:15]))
    if fragment is not None:
        f.check(f"{what} fragment 1..=219", 1 <= len(fragment) <= FRAGMENT_MAX)
    return fragment


def check_all(vectors: dict[int, dict[str, str]]) -> Failures:
    f = Failures()
    f.check("both suites have vectors", sorted(vectors) == [1, 2], str(sorted(vectors)))
    for suite_id, v in sorted(vectors.items()):
        try:
            check_session(f, SUITES[suite_id], v)
        except (ValueError, IndexError, struct.error) as err:
            f.check(f"suite {suite_id} vectors decode", False, repr(err))
    return f


def self_test(vectors: dict[int, dict[str, str]]) -> list[str]:
    """Every vector value with one hex digit changed (first, middle, last) must fail."""
    missed = []
    for suite_id, v in vectors.items():
        for name, value in v.items():
            if name.endswith("-label") or name == "configurator-unix-time":
                continue
            for at in (0, len(value) // 2, len(value) - 1):
                digit = "0" if value[at] != "0" else "1"
                changed = {k: dict(x) for k, x in vectors.items()}
                changed[suite_id][name] = value[:at] + digit + value[at + 1 :]
                if not check_all(changed).items:
                    missed.append(f"suite {suite_id} {name} digit {at}")
    return missed


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2] / "PROTOCOL.md")
    vectors = read_vectors(path.read_text())
    missed = self_test(vectors)
    if missed:
        print("spec-check self-test: changed vectors passed (the checker is blind to them):")
        for item in missed:
            print(f"  - {item}")
        return 1
    f = check_all(vectors)
    if f.items:
        print(f"spec-check: {len(f.items)} checks FAILED ({f.passed} passed):")
        for item in f.items:
            print(f"  - {item}")
        return 1
    print(
        f"spec-check: all {f.passed} checks of {path.name} section 10 pass; "
        "every changed hex digit tried is caught"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
