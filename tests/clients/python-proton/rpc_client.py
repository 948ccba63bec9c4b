#!/usr/bin/env python3
# AMQP 1.0 RPC calls to warren through RabbitMQ's rabbitmq_amqp1_0 plugin,
# written the way the Qpid Proton examples (client.py) write them.
#
#   rpc_client.py echo-string | echo-binary | echo-data | message | fib | status [SECONDS]
#
#   echo-string  JSON-RPC echo, the request an amqp-value string
#   echo-binary  the same request as Python bytes (an amqp-value binary)
#   echo-data    the same bytes as a data section (Message(inferred=True))
#   message      JSON-RPC test.message: what warren saw, headers included
#   fib          the RPC tutorial's fib of the AMQP int 30, on a raw route
#   status       broadcast to /topic/STATUS_KEY, one reply per server
#
# Requests go to /amq/queue/QUEUE (RabbitMQ 3.x's address of a queue);
# replies come to a named queue, /queue/NAME, that our receiver attaches
# to (which makes the plugin declare it): RabbitMQ 3.10 gives a dynamic
# receiver no link.  Every request carries a uuid correlation id and the
# application property probe=x1.
import json
import os
import sys
import uuid

from proton import Message, int32
from proton.handlers import MessagingHandler
from proton.reactor import Container

URL = os.environ.get('WARREN_AMQP10_URI', 'amqp://guest:guest@127.0.0.1:5672')
WARREN_QUEUE = os.environ.get('WARREN_QUEUE', 'warren.rpc')
RPC_QUEUE = os.environ.get('RPC_QUEUE', 'rpc_queue')
STATUS_KEY = os.environ.get('STATUS_KEY', 'SERVER_STATUS')


def jsonrpc(method, params):
    return json.dumps({'jsonrpc': '2.0', 'method': method, 'params': params, 'id': 1})


class Client(MessagingHandler):
    """Send one request, print every reply that matches its correlation id;
    stop after the first one, or after `seconds` when collecting (status)."""

    def __init__(self, address, message, seconds=None):
        super().__init__()
        self.address = address
        self.message = message
        self.seconds = seconds
        self.reply_queue = 'proton-reply-%s' % uuid.uuid4()
        self.replies = []
        self.failure = None

    def on_start(self, event):
        self.conn = event.container.connect(URL)
        self.receiver = event.container.create_receiver(self.conn, '/queue/' + self.reply_queue)
        self.sender = event.container.create_sender(self.conn, self.address)
        self.timer = event.container.schedule(self.seconds or 30, self)  # on_timer_task

    def on_link_opened(self, event):
        if event.receiver == self.receiver:  # the reply queue exists: send
            self.message.reply_to = '/queue/' + self.reply_queue
            self.message.correlation_id = uuid.uuid4()
            self.message.properties = {'probe': 'x1'}
            self.sender.send(self.message)

    def on_message(self, event):
        try:
            corr = event.message.correlation_id
        except UnicodeDecodeError as e:  # proton cannot even read it
            self.fail('the reply\'s correlation id is not our uuid but a string of bytes'
                      ' that are not UTF-8 (%s); body: %r' % (e, event.message.body))
            return
        if corr != self.message.correlation_id:
            self.fail('reply with correlation id %r, not %r; body: %r'
                      % (corr, self.message.correlation_id, event.message.body))
            return
        body = event.message.body
        if isinstance(body, (bytes, memoryview)):
            body = bytes(body).decode('utf-8')
        self.replies.append(body)
        print(' [.] Got %s' % body, flush=True)
        if self.seconds is None:
            self.done()

    def on_timer_task(self, event):
        if self.seconds is None and not self.replies:
            self.failure = 'no reply within 30 s'
        self.conn.close()

    def fail(self, why):
        self.failure = why
        self.done()

    def done(self):
        self.timer.cancel()
        self.conn.close()

    def run(self):
        Container(self).run()
        if self.failure:
            sys.exit(' [!] ' + self.failure)
        return self.replies


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else 'echo-string'
    request = jsonrpc('echo', ['hi', 42])
    if what == 'echo-string':
        Client('/amq/queue/' + WARREN_QUEUE, Message(body=request)).run()
    elif what == 'echo-binary':
        Client('/amq/queue/' + WARREN_QUEUE, Message(body=request.encode())).run()
    elif what == 'echo-data':
        Client('/amq/queue/' + WARREN_QUEUE, Message(body=request.encode(), inferred=True)).run()
    elif what == 'message':
        [reply] = Client('/amq/queue/' + WARREN_QUEUE,
                         Message(body=jsonrpc('test.message', []))).run()
        headers = json.loads(reply).get('result', {}).get('headers') or {}
        print(' [.] probe=%s' % json.dumps(find(headers, 'probe')))
    elif what == 'fib':
        Client('/amq/queue/' + RPC_QUEUE, Message(body=int32(30))).run()
    elif what == 'status':
        seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
        replies = Client('/topic/' + STATUS_KEY, Message(body=''), seconds).run()
        print(' [x] %d servers answered' % len(replies))
    else:
        sys.exit('usage: rpc_client.py echo-string|echo-binary|echo-data|message|fib|status [SECONDS]')


def find(value, key):
    """The value of `key` anywhere in a JSON value (headers may nest it)."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for v in value:
            found = find(v, key)
            if found is not None:
                return found
    return None


if __name__ == '__main__':
    main()
