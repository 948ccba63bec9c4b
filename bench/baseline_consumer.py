#!/usr/bin/python3
"""The baseline warren is measured against: a hand-written RPC consumer.

    /usr/bin/python3 bench/baseline_consumer.py URI QUEUE [PREFETCH [QUEUE_TYPE]]

This is the loop warren's users write themselves and would replace: the
RabbitMQ tutorial's RPC server (pika, blocking connection), answering
JSON-RPC 2.0 calls to one method, `echo`.  To be a fair comparison it keeps
warren's queue semantics: the same durable queue (quorum by default, as
warren's), the same prefetch (default 1), manual acks, and the ack only
after the reply is published.  It is deliberately no
faster and no slower than what the tutorial teaches; run several copies for
several consumers, as people do.

It prints "ready" on stdout once it is consuming (bench/run.sh waits for
that before loading it) and exits 0 on SIGTERM.

Debian's python3-pika is for /usr/bin/python3 (hence the shebang): a
python3 elsewhere on PATH may not have pika.
"""
import json
import signal
import sys

import pika


class Stop(Exception):
    """Raised by the SIGTERM handler to leave start_consuming()."""


def on_sigterm(signum, frame):
    raise Stop()


def handle(body):
    """The reply body for one request body, or None for a notification."""
    try:
        req = json.loads(body)
    except ValueError:
        return {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
    if not isinstance(req, dict) or not isinstance(req.get("method"), str):
        return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"},
                "id": req.get("id") if isinstance(req, dict) else None}
    if "id" not in req:
        return None
    if req["method"] != "echo":
        return {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"},
                "id": req["id"]}
    return {"jsonrpc": "2.0", "result": req.get("params"), "id": req["id"]}


def on_request(ch, method, props, body):
    reply = handle(body)
    if reply is not None and props.reply_to:
        ch.basic_publish(exchange="", routing_key=props.reply_to,
                         properties=pika.BasicProperties(correlation_id=props.correlation_id,
                                                         content_type="application/json"),
                         body=json.dumps(reply))
    # Acked only after the reply is out, as warren does.
    ch.basic_ack(delivery_tag=method.delivery_tag)


def main():
    if not 3 <= len(sys.argv) <= 5 or (len(sys.argv) >= 4 and not sys.argv[3].isdigit()):
        sys.stderr.write("usage: baseline_consumer.py URI QUEUE [PREFETCH [QUEUE_TYPE]]\n")
        return 64
    uri, queue = sys.argv[1], sys.argv[2]
    prefetch = int(sys.argv[3]) if len(sys.argv) >= 4 else 1
    queue_type = sys.argv[4] if len(sys.argv) >= 5 else "quorum"
    signal.signal(signal.SIGTERM, on_sigterm)

    conn = pika.BlockingConnection(pika.URLParameters(uri))
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": queue_type})
    ch.basic_qos(prefetch_count=prefetch)
    ch.basic_consume(queue=queue, on_message_callback=on_request, auto_ack=False)
    print("ready", flush=True)
    try:
        ch.start_consuming()
    except (Stop, KeyboardInterrupt):
        pass
    # A message caught mid-way stays unacked and goes back to the queue.
    try:
        conn.close()
    except pika.exceptions.AMQPError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
