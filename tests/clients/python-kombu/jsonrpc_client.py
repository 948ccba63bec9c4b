#!/usr/bin/env python3
# A JSON-RPC 2.0 call with kombu: echo(["hi", 42]) on warren's jsonrpc route.
import json
import os

from kombu import Connection, Consumer, Producer, Queue, uuid

with Connection(os.environ.get('WARREN_URI', 'amqp://guest:guest@localhost:5672//')) as conn:
    replies = Queue(uuid(), exclusive=True, auto_delete=True)
    corr = uuid()
    result = []

    def on_reply(message):
        if message.properties['correlation_id'] == corr:
            result.append(message.payload)

    with Consumer(conn, queues=[replies], on_message=on_reply, no_ack=True):
        Producer(conn).publish(
            {'jsonrpc': '2.0', 'method': 'echo', 'params': ['hi', 42], 'id': 1},
            exchange='', routing_key=os.environ.get('WARREN_QUEUE', 'warren.rpc'),
            serializer='json', reply_to=replies.name, correlation_id=corr)
        while not result:
            conn.drain_events(timeout=10)
    reply = result[0]
    if 'error' in reply:
        raise SystemExit(f"error {reply['error']['code']}: {reply['error']['message']}")
    print(f" [.] Got {json.dumps(reply['result'], separators=(',', ':'))}")
