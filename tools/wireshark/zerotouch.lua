-- zerotouch.lua: a Wireshark / tshark dissector for zerotouch provisioning frames
-- (PROTOCOL.md §4) carried in ESP-NOW 802.11 vendor action frames.
--
-- Wireshark has no ESP-NOW dissector, so this is a post-dissector: for every packet that is
-- radiotap + an 802.11 Action frame of category 127 with Espressif's OUI 18:fe:34 and an
-- ESP-NOW vendor element (221, type 4), it reads the element body and, if it starts with
-- the zerotouch magic 0x5A and version 2, names the message and shows its clear fields.
-- Encrypted parts (AEAD ciphertexts and tags) are shown as such, never interpreted.
--
-- Use:  wireshark -X lua_script:tools/wireshark/zerotouch.lua capture.pcapng
--       tshark -X lua_script:tools/wireshark/zerotouch.lua -r capture.pcapng -Y zerotouch
-- or copy the file into ~/.local/lib/wireshark/plugins/.  Filter fields: zerotouch.*

local zt = Proto("zerotouch", "zerotouch provisioning")

local TYPES = { [1] = "Announce", [2] = "Challenge", [3] = "Response", [4] = "Data", [5] = "Ack", [6] = "Beacon" }
local SUITES = {
    [1] = "Ed25519 / X25519 / ChaCha20-Poly1305",
    [2] = "P-256 / ECDH P-256 / AES-128-GCM",
}
local KEY_LEN = { [1] = 32, [2] = 33 }
local MODES = { [0] = "New", [1] = "RetryAfterFailure", [2] = "Reconfigure" }
local REASONS = {
    [0] = "none", [1] = "AP not found", [2] = "authentication failed", [3] = "no IP address",
    [4] = "configuration rejected", [5] = "timeout", [255] = "other",
}
local TAG_LEN = 16

local f = {
    magic = ProtoField.uint8("zerotouch.magic", "Magic", base.HEX),
    version = ProtoField.uint8("zerotouch.version", "Protocol version", base.DEC),
    type = ProtoField.uint8("zerotouch.type", "Type", base.DEC, TYPES),
    suite = ProtoField.uint8("zerotouch.suite", "Suite", base.DEC, SUITES),
    length = ProtoField.uint16("zerotouch.length", "Frame length", base.DEC),
    mode = ProtoField.uint8("zerotouch.mode", "Announce mode", base.DEC, MODES),
    last_failure = ProtoField.uint8("zerotouch.last_failure", "Last failure", base.DEC, REASONS),
    identity_key = ProtoField.bytes("zerotouch.identity_key", "Enrollee identity public key"),
    ephemeral_key = ProtoField.bytes("zerotouch.ephemeral_key", "Ephemeral public key"),
    boot_counter = ProtoField.uint32("zerotouch.boot_counter", "Boot counter", base.DEC),
    round_counter = ProtoField.uint32("zerotouch.round_counter", "Round counter", base.DEC),
    announce_channel = ProtoField.uint8("zerotouch.announce_channel", "Sent on channel", base.DEC),
    beacon_channel = ProtoField.uint8("zerotouch.beacon_channel", "Configurator channel", base.DEC),
    announce_interval = ProtoField.uint16("zerotouch.announce_interval", "Announce interval (ms)", base.DEC),
    suites = ProtoField.uint8("zerotouch.suites", "Suites answered", base.HEX),
    announce_sig = ProtoField.bytes("zerotouch.announce_signature", "Announce signature (sig_A)"),
    sid = ProtoField.uint32("zerotouch.sid", "Session id", base.HEX),
    nonce = ProtoField.bytes("zerotouch.nonce", "Nonce Nc"),
    unix_time = ProtoField.absolute_time("zerotouch.unix_time", "Configurator time", base.UTC),
    seq = ProtoField.uint16("zerotouch.seq", "Fragment sequence number", base.DEC),
    ack = ProtoField.uint16("zerotouch.ack", "Cumulative ack", base.DEC),
    sack = ProtoField.uint16("zerotouch.sack", "Selective ack", base.HEX),
    ack_counter = ProtoField.uint16("zerotouch.ack_counter", "Ack counter", base.DEC),
    flags = ProtoField.uint8("zerotouch.flags", "Flags", base.HEX),
    flag_end = ProtoField.bool("zerotouch.flags.end", "END (last fragment of a message)", 8, nil, 0x01),
    flag_complete = ProtoField.bool("zerotouch.flags.complete", "COMPLETE (join report persisted)", 8, nil, 0x01),
    encrypted = ProtoField.bytes("zerotouch.encrypted", "Encrypted"),
    encrypted_len = ProtoField.uint16("zerotouch.encrypted_len", "Encrypted length", base.DEC),
    tag = ProtoField.bytes("zerotouch.tag", "AEAD tag"),
}
zt.fields = f

local ex_length = ProtoExpert.new("zerotouch.bad_length", "Length does not match the frame type",
    expert.group.MALFORMED, expert.severity.ERROR)
zt.experts = { ex_length }

-- Offset of the ESP-NOW body and its length, or nil if this is no ESP-NOW frame.
local function espnow_body(tvb)
    if tvb:len() < 8 or tvb(0, 1):uint() ~= 0 then return nil end
    local rt = tvb(2, 2):le_uint()
    local wlan = rt
    if tvb:len() < wlan + 39 then return nil end
    if tvb(wlan, 1):uint() ~= 0xd0 then return nil end                 -- Action frame
    if tvb(wlan + 24, 1):uint() ~= 127 then return nil end             -- vendor specific
    if tvb(wlan + 25, 3):uint() ~= 0x18fe34 then return nil end        -- Espressif
    if tvb(wlan + 32, 1):uint() ~= 221 then return nil end             -- vendor element
    if tvb(wlan + 34, 3):uint() ~= 0x18fe34 then return nil end
    if tvb(wlan + 37, 1):uint() ~= 4 then return nil end               -- ESP-NOW
    local body_len = tvb(wlan + 33, 1):uint() - 5
    local body = wlan + 39
    if body_len < 0 or tvb:len() < body + body_len then return nil end
    return body, body_len
end

-- Adds an encrypted part of `len` bytes at `off`: ciphertext then the 16-byte tag.
local function add_sealed(tree, b, off, len, what)
    local clear_len = len - TAG_LEN
    if clear_len > 0 then
        local item = tree:add(f.encrypted, b(off, clear_len))
        item:append_text(" (" .. what .. ", " .. clear_len .. " bytes)")
        tree:add(f.encrypted_len, clear_len):set_generated()
    end
    tree:add(f.tag, b(off + len - TAG_LEN, TAG_LEN))
end

local function add_ack_state(tree, b)
    tree:add(f.ack, b(10, 2))
    tree:add(f.sack, b(12, 2))
end

local dissect = {}

function dissect.announce(tree, b, p)
    tree:add(f.mode, b(4, 1))
    tree:add(f.last_failure, b(5, 1))
    tree:add(f.identity_key, b(6, p))
    tree:add(f.ephemeral_key, b(6 + p, p))
    tree:add(f.boot_counter, b(6 + 2 * p, 4))
    tree:add(f.round_counter, b(10 + 2 * p, 4))
    tree:add(f.announce_channel, b(14 + 2 * p, 1))
    tree:add(f.announce_sig, b(15 + 2 * p, 64))
    local info = "mode " .. (MODES[b(4, 1):uint()] or "?") .. " counter "
        .. b(6 + 2 * p, 4):uint() .. "." .. b(10 + 2 * p, 4):uint()
    return 79 + 2 * p, info
end

function dissect.challenge(tree, b, p)
    tree:add(f.sid, b(4, 4))
    tree:add(f.nonce, b(8, 16))
    tree:add(f.ephemeral_key, b(24, p))
    tree:add(f.unix_time, b(24 + p, 4))
    add_sealed(tree, b, 28 + p, 73 + p + 64 + TAG_LEN, "certificate and transcript signature")
    return 181 + 2 * p, nil
end

function dissect.response(tree, b)
    tree:add(f.sid, b(4, 4))
    add_sealed(tree, b, 8, 64 + TAG_LEN, "transcript signature")
    return 88, nil
end

function dissect.data(tree, b)
    tree:add(f.sid, b(4, 4))
    tree:add(f.seq, b(8, 2))
    add_ack_state(tree, b)
    local flags = tree:add(f.flags, b(14, 1))
    flags:add(f.flag_end, b(14, 1))
    add_sealed(tree, b, 15, b:len() - 15, "message fragment")
    local info = "seq " .. b(8, 2):uint() .. " ack " .. b(10, 2):uint()
    if bit.band(b(14, 1):uint(), 1) ~= 0 then info = info .. " END" end
    return nil, info
end

function dissect.ack(tree, b)
    tree:add(f.sid, b(4, 4))
    tree:add(f.ack_counter, b(8, 2))
    add_ack_state(tree, b)
    local flags = tree:add(f.flags, b(14, 1))
    flags:add(f.flag_complete, b(14, 1))
    add_sealed(tree, b, 15, TAG_LEN, "empty")
    local info = "ack " .. b(10, 2):uint()
    if bit.band(b(14, 1):uint(), 1) ~= 0 then info = info .. " COMPLETE" end
    return 31, info
end

function dissect.beacon(tree, b)
    tree:add(f.beacon_channel, b(4, 1))
    tree:add(f.announce_interval, b(5, 2))
    tree:add(f.suites, b(7, 1))
    return 8, "channel " .. b(4, 1):uint() .. " pace " .. b(5, 2):uint() .. " ms"
end

-- Smallest length of each type (Data: the minimum; the others are exact).
local MIN_LEN = { 79, 181, 88, 32, 31, 8 }
local BY_TYPE = { dissect.announce, dissect.challenge, dissect.response, dissect.data, dissect.ack, dissect.beacon }

function zt.dissector(tvb, pinfo, root)
    local off, len = espnow_body(tvb)
    if off == nil or len < 4 then return end
    local b = tvb(off, len):tvb("zerotouch frame")
    if b(0, 1):uint() ~= 0x5a or b(1, 1):uint() ~= 2 then return end
    local kind, suite = b(2, 1):uint(), b(3, 1):uint()
    local name, p = TYPES[kind], KEY_LEN[suite]
    local tree = root:add(zt, tvb(off, len))
    tree:add(f.magic, b(0, 1))
    tree:add(f.version, b(1, 1))
    tree:add(f.type, b(2, 1))
    tree:add(f.suite, b(3, 1))
    tree:add(f.length, len):set_generated()
    if name == nil or p == nil then
        tree:append_text(" (unknown type or suite)")
        return
    end
    tree:append_text(", " .. name)
    if len < MIN_LEN[kind] + (kind <= 2 and 2 * p or 0) then
        tree:add_proto_expert_info(ex_length)
        return
    end
    local expected, info = BY_TYPE[kind](tree, b, p)
    if expected ~= nil and expected ~= len then
        tree:add_proto_expert_info(ex_length, "length " .. len .. ", " .. name .. " is " .. expected)
    end
    pinfo.cols.protocol = "zerotouch"
    local text = "zerotouch " .. name .. " (suite " .. suite .. ")"
    if kind >= 2 and kind <= 5 then text = text .. string.format(" sid %08x", b(4, 4):uint()) end
    if info then text = text .. " " .. info end
    pinfo.cols.info = text
end

register_postdissector(zt)
