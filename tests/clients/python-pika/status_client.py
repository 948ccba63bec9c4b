#!/usr/bin/env python3
# Scatter-gather: ask every server for its status, print each reply.
# Publishes to amq.topic with routing key SERVER_STATUS and reply_to an
# exclusive queue, then collects what comes back for SECONDS (default 3).
import json
import os
import sys
import time
import uuid

import pika

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0

conn = pika.BlockingConnection(
    pika.URLParameters(os.environ.get('WARREN_URI', 'amqp://guest:guest@localhost:5672')))
ch = conn.channel()
reply_queue = ch.queue_declare('', exclusive=True).method.queue
corr = str(uuid.uuid4())
replies = []


def on_reply(ch, method, props, body):
    if props.correlation_id == corr:
        replies.append(body)
        print(f" [.] {json.dumps(json.loads(body), separators=(',', ':'), sort_keys=True)}",
              flush=True)


ch.basic_consume(queue=reply_queue, on_message_callback=on_reply, auto_ack=True)
ch.basic_publish(
    exchange='amq.topic', routing_key=os.environ.get('STATUS_KEY', 'SERVER_STATUS'),
    properties=pika.BasicProperties(reply_to=reply_queue, correlation_id=corr),
    body='')
deadline = time.monotonic() + seconds
while (left := deadline - time.monotonic()) > 0:
    conn.process_data_events(time_limit=left)
print(f" [x] {len(replies)} servers answered")
conn.close()
