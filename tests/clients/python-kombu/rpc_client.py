#!/usr/bin/env python3
# The RPC tutorial's Fibonacci client in kombu's own idiom (kombu's
# examples/rpc-tut6/rpc_client.py): the request is kombu's JSON of n, the
# reply is decoded by its content type.  Broker and queue from the
# environment.
import os

from kombu import Connection, Consumer, Producer, Queue, uuid


class FibonacciRpcClient(object):

    def __init__(self, connection):
        self.connection = connection
        self.callback_queue = Queue(uuid(), exclusive=True, auto_delete=True)

    def on_response(self, message):
        if message.properties['correlation_id'] == self.correlation_id:
            self.response = message.payload

    def call(self, n):
        self.response = None
        self.correlation_id = uuid()
        with Producer(self.connection) as producer:
            producer.publish(
                n,
                exchange='',
                routing_key=os.environ.get('RPC_QUEUE', 'rpc_queue'),
                declare=[self.callback_queue],
                reply_to=self.callback_queue.name,
                correlation_id=self.correlation_id,
            )
        with Consumer(self.connection,
                      on_message=self.on_response,
                      queues=[self.callback_queue], no_ack=True):
            while self.response is None:
                self.connection.drain_events(timeout=10)
        return self.response


def main(broker_url):
    connection = Connection(broker_url)
    fibonacci_rpc = FibonacciRpcClient(connection)
    print(' [x] Requesting fib(30)')
    response = fibonacci_rpc.call(30)
    print(f' [.] Got {response!r}')


if __name__ == '__main__':
    main(os.environ.get('WARREN_URI', 'amqp://guest:guest@localhost:5672//'))
