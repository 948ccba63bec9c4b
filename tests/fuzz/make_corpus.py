#!/usr/bin/env python3
"""Write the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/).

  tests/fuzz/make_corpus.py

The committed seeds are this script's output; rerun it after changing it.
fuzz_dispatch inputs: a route byte, the length of the encoded basic
properties (2 bytes, big-endian), the properties as on the wire, the body
(see fuzz_dispatch.c).  fuzz_config inputs: config files, the ones in
config/ and tests/config_cases/, and a few with -o overrides after a NUL.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

JSONRPC, RAW, AMQPBUS = 0, 1, 2
AMQP10, BUILTINS, BROADCAST, PREFIX = 4, 8, 16, 32
ECHO, FIRST, MESSAGE, STATUS = 0, 64, 128, 192


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([len(b)]) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def field(v):
    """An AMQP 0-9-1 field value (rabbitmq-c's kinds)."""
    kind, val = v
    if kind == "S":
        return b"S" + longstr(val.encode() if isinstance(val, str) else val)
    if kind == "x":
        return b"x" + longstr(val)
    if kind == "t":
        return b"t" + bytes([1 if val else 0])
    if kind == "b":
        return b"b" + struct.pack(">b", val)
    if kind == "B":
        return b"B" + struct.pack(">B", val)
    if kind == "s":
        return b"s" + struct.pack(">h", val)
    if kind == "u":
        return b"u" + struct.pack(">H", val)
    if kind == "I":
        return b"I" + struct.pack(">i", val)
    if kind == "i":
        return b"i" + struct.pack(">I", val)
    if kind == "l":
        return b"l" + struct.pack(">q", val)
    if kind == "f":
        return b"f" + struct.pack(">f", val)
    if kind == "d":
        return b"d" + struct.pack(">d", val)
    if kind == "D":
        return b"D" + struct.pack(">BI", *val)
    if kind == "T":
        return b"T" + struct.pack(">Q", val)
    if kind == "V":
        return b"V"
    if kind == "F":
        return b"F" + table(val)
    if kind == "A":
        items = b"".join(field(x) for x in val)
        return b"A" + struct.pack(">I", len(items)) + items
    raise ValueError(kind)


def table(entries):
    body = b"".join(shortstr(k) + field(v) for k, v in entries)
    return struct.pack(">I", len(body)) + body


def props(content_type=None, headers=None, delivery_mode=None, correlation_id=None,
          reply_to=None, expiration=None, message_id=None, timestamp=None, type_=None):
    flags, out = 0, b""
    if content_type is not None:
        flags |= 1 << 15
        out += shortstr(content_type)
    if headers is not None:
        flags |= 1 << 13
        out += table(headers)
    if delivery_mode is not None:
        flags |= 1 << 12
        out += bytes([delivery_mode])
    if correlation_id is not None:
        flags |= 1 << 10
        out += shortstr(correlation_id)
    if reply_to is not None:
        flags |= 1 << 9
        out += shortstr(reply_to)
    if expiration is not None:
        flags |= 1 << 8
        out += shortstr(expiration)
    if message_id is not None:
        flags |= 1 << 7
        out += shortstr(message_id)
    if timestamp is not None:
        flags |= 1 << 6
        out += struct.pack(">Q", timestamp)
    if type_ is not None:
        flags |= 1 << 5
        out += shortstr(type_)
    return struct.pack(">H", flags) + out


def delivery(sel, body, **kw):
    p = props(**kw)
    return bytes([sel]) + struct.pack(">H", len(p)) + p + (body.encode() if isinstance(body, str) else body)


# AMQP 1.0 sections, encoded by hand.
def described(code, value):
    return b"\x00\x53" + bytes([code]) + value


def str8(s):
    b = s.encode()
    return b"\xa1" + bytes([len(b)]) + b


def bin8(b):
    return b"\xa0" + bytes([len(b)]) + b


def list8(items):
    body = b"".join(items)
    return b"\xc0" + bytes([len(body) + 1, len(items)]) + body


def map8(pairs):
    body = b"".join(k + v for k, v in pairs)
    return b"\xc1" + bytes([len(body) + 1, 2 * len(pairs)]) + body


AMQP_VALUE, DATA, SEQUENCE, PROPERTIES, APP_PROPERTIES = 0x77, 0x75, 0x76, 0x73, 0x74

RT = dict(reply_to="amq.gen-reply", correlation_id="c1")
DISPATCH = {
    "jsonrpc_echo": delivery(JSONRPC, '{"jsonrpc":"2.0","method":"echo","params":[1,"a"],"id":1}', **RT),
    "jsonrpc_batch": delivery(JSONRPC, '[{"jsonrpc":"2.0","method":"echo","params":{"x":[]},"id":"q1"},'
                              '{"jsonrpc":"2.0","method":"test.fail","id":2},'
                              '{"jsonrpc":"2.0","method":"echo"},{"bad":1},3]', **RT),
    "jsonrpc_notification": delivery(JSONRPC, '{"jsonrpc":"2.0","method":"test.first","params":[7]}', **RT),
    "jsonrpc_status": delivery(JSONRPC | BUILTINS, '{"jsonrpc":"2.0","method":"warren.status","id":null}', **RT),
    "jsonrpc_parse_error": delivery(JSONRPC, '{"jsonrpc":"2.0",', **RT),
    "jsonrpc_prefix": delivery(JSONRPC | PREFIX, '{"jsonrpc":"2.0","method":"echo","params":[],"id":"abc"}'),
    "jsonrpc_message": delivery(JSONRPC, '{"jsonrpc":"2.0","method":"test.message","id":9}',
                                content_type="application/json", delivery_mode=2,
                                headers=[("s", ("S", "v")), ("n", ("I", -5)), ("t", ("t", True)),
                                         ("d", ("d", 1.5)), ("ts", ("T", 1700000000)),
                                         ("arr", ("A", [("u", 7), ("S", "x")])),
                                         ("tab", ("F", [("k", ("l", 1 << 40))])),
                                         ("dec", ("D", (2, 12345))), ("void", ("V", None)),
                                         ("bytes", ("x", b"\xff\x00"))],
                                **RT),
    "raw_number": delivery(RAW, "30", **RT),
    "raw_text": delivery(RAW | FIRST, "hello there", **RT),
    "raw_empty": delivery(RAW | BROADCAST, "", **RT),
    "raw_binary": delivery(RAW, b"\xff\xfe\x00", **RT),
    "raw_status": delivery(RAW | BUILTINS | STATUS, "", **RT),
    "raw_message": delivery(RAW | MESSAGE, '{"a":1}', headers=[("x-correlation-id", ("l", 42))], **RT),
    "raw_no_reply_to": delivery(RAW, "[1,2]"),
    "amqpbus_request": delivery(AMQPBUS | PREFIX, '{"q":{"now":true},"qid":"q538"}'),
    "amqpbus_bad_qid": delivery(AMQPBUS | PREFIX, '{"q":1,"qid":"a.b*"}'),
    "amqpbus_reply_to": delivery(AMQPBUS, '{"q":[1],"qid":17}', **RT),
    "amqpbus_no_q": delivery(AMQPBUS | PREFIX, '{"qid":"x"}'),
    "reply_to_queues": delivery(RAW, "1", reply_to="/queues/my%20q", correlation_id="c"),
    "reply_to_exchange": delivery(RAW, "1", reply_to="/exchanges/amq.topic/k", correlation_id="c"),
    "reply_to_v1": delivery(RAW, "1", reply_to="/exchange/x/y", correlation_id="c"),
    "amqp10_string": delivery(RAW | AMQP10, described(AMQP_VALUE, str8("hi")), **RT),
    "amqp10_data": delivery(JSONRPC | AMQP10, described(DATA, bin8(b'{"jsonrpc":"2.0","method":"echo","id":1}')), **RT),
    "amqp10_sequence": delivery(RAW | AMQP10, described(SEQUENCE, list8([b"\x54\x1e", str8("x"), b"\x40"])), **RT),
    "amqp10_map": delivery(RAW | AMQP10, described(AMQP_VALUE, map8([(str8("k"), b"\x41"), (b"\x52\x01", b"\x98" + bytes(16))])), **RT),
    "amqp10_headers": delivery(RAW | MESSAGE | AMQP10, described(AMQP_VALUE, b"\x54\x1e"),
                               headers=[("x-amqp-1.0-app-properties",
                                         ("x", described(APP_PROPERTIES, map8([(str8("myprop"), str8("v"))])))),
                                        ("x-amqp-1.0-properties",
                                         ("x", described(PROPERTIES, list8([b"\x40", b"\x40", b"\x40", b"\x40", b"\x40",
                                                                            b"\x98" + bytes(range(16))]))))],
                               **RT),
    "amqp10_truncated": delivery(RAW | AMQP10, b"\x00\x53\x77\xa1\x10ab", **RT),
}


def config_seeds():
    seeds = {"warren.conf": open(os.path.join(ROOT, "config", "warren.conf"), "rb").read()}
    cases = os.path.join(ROOT, "tests", "config_cases")
    for case in sorted(os.listdir(cases)):
        f = os.path.join(cases, case, "warren.conf")
        if os.path.exists(f):
            seeds["case_" + case] = open(f, "rb").read()
    minimal = b"[plugins]\nload = echo\n\n[route rpc]\nqueue = rpc\n"
    seeds["minimal"] = minimal
    seeds["overrides"] = minimal + b"\0pool.workers=8\nroute.rpc.format=raw\nroute.rpc.method=echo\n"
    seeds["routes"] = (b"[pool]\nmax_message_size = 2M\nbuiltin_methods = no\n[log]\nlevel = debug\n"
                       b"[route bus]\nqueue = bus\nformat = amqpbus\nmethod = echo\nexchange = TestExchange\n"
                       b"exchange_declare = topic\nbindings = example.request.* a.#\nreply_prefix = example.response\n"
                       b"[route status]\nbroadcast = yes\nexchange = amq.topic\nbindings = SERVER_STATUS\n"
                       b"format = raw\nmethod = warren.status\nqueue_type = classic\n"
                       b"[plugin echo]\nanything = goes ; here\n")
    return seeds


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("fuzz_dispatch", DISPATCH)
write("fuzz_config", config_seeds())
