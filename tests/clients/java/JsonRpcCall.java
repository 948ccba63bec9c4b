// A JSON-RPC 2.0 call with the Java client's own com.rabbitmq.client.RpcClient
// (direct reply-to, amq.rabbitmq.reply-to): echo(["hi", 42]) on warren's
// jsonrpc route.  Prints the reply body as it came.
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.RpcClient;

public class JsonRpcCall {
    public static void main(String[] argv) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setUri(System.getenv().getOrDefault("WARREN_URI", "amqp://guest:guest@localhost:5672"));
        String queue = System.getenv().getOrDefault("WARREN_QUEUE", "warren.rpc");

        try (Connection connection = factory.newConnection()) {
            Channel channel = connection.createChannel();
            RpcClient rpc = new RpcClient(channel, "", queue, 10000);
            String request = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"hi\",42],\"id\":1}";
            System.out.println(" [x] Calling " + request);
            String reply = rpc.stringCall(request);
            System.out.println(" [.] Got " + reply);
            rpc.close();
        }
    }
}
