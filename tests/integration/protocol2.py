"""Protocol 2 messages in BER (asn1/Protocol.asn1, EXPLICIT tags), for tests that talk to the
reference server with OpenSSH's `ssh -s HOST game-v2` instead of the C++ client.

Client messages are encoded (open, submit, account), server messages decoded
(opened, result). test_cluster checks both directions against the known-answer vectors in
tests/data/protocol2-vectors.txt.
"""

import base64


def _len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + _len(len(body)) + body


def ctx(n, body):
    """[n] EXPLICIT: a constructed context tag around one TLV."""
    return tlv(0xA0 | n, body)


def integer(v):
    n = max(1, (v.bit_length() + 8) // 8)
    return tlv(0x02, v.to_bytes(n, "big", signed=True))


def seq(*items):
    return tlv(0x30, b"".join(items))


NULL = b"\x05\x00"


def utf8(s):
    return tlv(0x0C, s.encode("utf-8") if isinstance(s, str) else s)


def octets(b):
    return tlv(0x04, b)


# ---- Request (protocol 1) and ClientMessage --------------------------------

def set_username(name):
    return ctx(0, seq(ctx(0, utf8(name))))


def add_score(value):
    return ctx(1, seq(ctx(0, integer(value))))


def open_stream(stream):
    assert len(stream) == 16
    return ctx(0, seq(ctx(0, octets(stream))))


def submit(s, request):
    return ctx(1, seq(ctx(0, integer(s)), ctx(1, request)))


def add_key(blob, label):
    return ctx(0, seq(ctx(0, octets(blob)), ctx(1, utf8(label))))


def remove_key(blob):
    return ctx(1, seq(ctx(0, octets(blob))))


LIST_KEYS = ctx(2, NULL)


def account(s, request):
    return ctx(2, seq(ctx(0, integer(s)), ctx(1, request)))


def key_blob(pub_line):
    """The RFC 4253 blob of an OpenSSH public key line ("type base64 [comment]")."""
    return base64.b64decode(pub_line.split()[1])


def pub_line(blob):
    """'type base64' of a key blob."""
    n = int.from_bytes(blob[:4], "big")
    return f"{blob[4:4 + n].decode()} {base64.b64encode(blob).decode()}"


# ---- ServerMessage -----------------------------------------------------------

def _tlvs(data):
    """[(tag, body)] of the concatenated TLVs in data (definite lengths only); raises
    ValueError on a truncated one."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        n = data[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        if i + n > len(data):
            raise ValueError(f"truncated TLV at byte {i}")
        out.append((tag, data[i:i + n]))
        i += n
    return out


def _one(data, tag):
    [(t, body)] = _tlvs(data)
    if t != tag:
        raise ValueError(f"tag {t:#x}, expected {tag:#x}")
    return body


def _int(data):
    return int.from_bytes(_one(data, 0x02), "big", signed=True)


def _fields(data):
    """The [n] fields of a SEQUENCE, as {n: inner TLV bytes}."""
    return {t & 0x1F: body for t, body in _tlvs(_one(data, 0x30))}


def _outcome(data):
    [(t, body)] = _tlvs(data)
    kind = t & 0x1F
    if kind == 0:
        return ("accepted",)
    if kind == 1:
        return ("rejected", _one(_fields(body)[0], 0x0C).decode("utf-8"))
    if kind == 2:
        return ("duplicate",)
    if kind == 3:
        keys = []
        for _, info in _tlvs(_one(body, 0x30)):
            f = _fields(tlv(0x30, info))
            keys.append((_one(f[0], 0x04), _one(f[1], 0x0C).decode("utf-8"),
                         _one(f[2], 0x01) != b"\x00"))
        return ("keys", keys)
    raise ValueError(f"unknown outcome tag {t:#x}")


def decode_server(data):
    """[('opened', lastSeq) | ('result', seq, outcome)] of a server byte stream, where
    outcome is ('accepted',), ('rejected', reason), ('duplicate',) or
    ('keys', [(blob, label, current)])."""
    out = []
    for t, body in _tlvs(data):
        f = _fields(body)
        if t == 0xA0:
            out.append(("opened", _int(f[0])))
        elif t == 0xA1:
            out.append(("result", _int(f[0]), _outcome(f[1])))
        else:
            raise ValueError(f"not a ServerMessage: tag {t:#x}")
    return out
