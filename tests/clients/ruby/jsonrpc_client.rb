#!/usr/bin/env ruby
# A JSON-RPC 2.0 call with Bunny: echo(["hi", 42]) on warren's jsonrpc
# route, the reply taken from an exclusive queue by correlation id.
require 'bunny'
require 'json'
require 'securerandom'
require 'timeout'

connection = Bunny.new(ENV.fetch('WARREN_URI', 'amqp://guest:guest@localhost:5672'),
                       automatically_recover: false)
connection.start
channel = connection.create_channel
reply_queue = channel.queue('', exclusive: true)
corr = SecureRandom.uuid
replies = Queue.new

reply_queue.subscribe do |_delivery_info, properties, payload|
  replies << payload if properties[:correlation_id] == corr
end
channel.default_exchange.publish(
  JSON.generate(jsonrpc: '2.0', method: 'echo', params: ['hi', 42], id: 1),
  routing_key: ENV.fetch('WARREN_QUEUE', 'warren.rpc'),
  content_type: 'application/json', correlation_id: corr, reply_to: reply_queue.name
)
payload = begin
  Timeout.timeout(10) { replies.pop }
rescue Timeout::Error
  abort 'no reply within 10 s'
end
reply = JSON.parse(payload)
abort "error #{reply['error']['code']}: #{reply['error']['message']}" if reply['error']
puts " [.] Got #{JSON.generate(reply['result'])}"
connection.close
