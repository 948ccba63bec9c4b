#!/usr/bin/env node
// A JSON-RPC 2.0 call with amqplib's promise API and direct reply-to
// (amq.rabbitmq.reply-to): echo(["hi", 42]) on warren's jsonrpc route.
const amqp = require('amqplib');
const { randomUUID } = require('crypto');

async function main() {
  const connection = await amqp.connect(process.env.WARREN_URI || 'amqp://localhost');
  try {
    const channel = await connection.createChannel();
    const correlationId = randomUUID();
    let answer;
    const reply = new Promise((resolve) => { answer = resolve; });
    // Direct reply-to: consume from the pseudo-queue first, then publish
    // on the same channel.
    await channel.consume('amq.rabbitmq.reply-to', (msg) => {
      if (msg.properties.correlationId === correlationId) {
        answer(JSON.parse(msg.content.toString()));
      }
    }, { noAck: true });
    channel.sendToQueue(process.env.WARREN_QUEUE || 'warren.rpc',
      Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: ['hi', 42], id: 1 })),
      { correlationId, replyTo: 'amq.rabbitmq.reply-to', contentType: 'application/json' });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no reply within 10 s')), 10000);
    });
    const response = await Promise.race([reply, timeout]);
    clearTimeout(timer);
    if (response.error) {
      throw new Error(`error ${response.error.code}: ${response.error.message}`);
    }
    console.log(' [.] Got %s', JSON.stringify(response.result));
  } finally {
    await connection.close();
  }
}

main().catch((err) => { console.error(err.message); process.exit(1); });
