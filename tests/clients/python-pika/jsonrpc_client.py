#!/usr/bin/env python3
# A JSON-RPC 2.0 call over pika: echo(["hi", 42]) on warren's jsonrpc route.
import json
import os
import uuid

import pika

conn = pika.BlockingConnection(
    pika.URLParameters(os.environ.get('WARREN_URI', 'amqp://guest:guest@localhost:5672')))
ch = conn.channel()
reply_queue = ch.queue_declare('', exclusive=True).method.queue
corr = str(uuid.uuid4())
ch.basic_publish(
    exchange='', routing_key=os.environ.get('WARREN_QUEUE', 'warren.rpc'),
    properties=pika.BasicProperties(reply_to=reply_queue, correlation_id=corr,
                                    content_type='application/json'),
    body=json.dumps({'jsonrpc': '2.0', 'method': 'echo', 'params': ['hi', 42], 'id': 1}))
for method, props, body in ch.consume(reply_queue, auto_ack=True, inactivity_timeout=10):
    if method is None:
        raise SystemExit('no reply within 10 s')
    if props.correlation_id == corr:
        reply = json.loads(body)
        if 'error' in reply:
            raise SystemExit(f"error {reply['error']['code']}: {reply['error']['message']}")
        print(f" [.] Got {json.dumps(reply['result'], separators=(',', ':'))}")
        break
conn.close()
