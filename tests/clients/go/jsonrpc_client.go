// A JSON-RPC 2.0 call with amqp091-go: echo(["hi", 42]) on warren's
// jsonrpc route, reply to an exclusive queue matched by correlation id.
package main

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type request struct {
	JSONRPC string        `json:"jsonrpc"`
	Method  string        `json:"method"`
	Params  []interface{} `json:"params"`
	ID      int           `json:"id"`
}

type response struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	ID int `json:"id"`
}

func getenv(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return fallback
}

func main() {
	conn, err := amqp.Dial(getenv("WARREN_URI", "amqp://guest:guest@localhost:5672/"))
	if err != nil {
		log.Fatalf("connect: %s", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		log.Fatalf("channel: %s", err)
	}
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		log.Fatalf("declare: %s", err)
	}
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		log.Fatalf("consume: %s", err)
	}

	body, _ := json.Marshal(request{"2.0", "echo", []interface{}{"hi", 42}, 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	corrID := "go-" + time.Now().Format("150405.000000000")
	err = ch.PublishWithContext(ctx, "", getenv("WARREN_QUEUE", "warren.rpc"), false, false,
		amqp.Publishing{ContentType: "application/json", CorrelationId: corrID, ReplyTo: q.Name, Body: body})
	if err != nil {
		log.Fatalf("publish: %s", err)
	}
	for {
		select {
		case d := <-msgs:
			if d.CorrelationId != corrID {
				continue
			}
			var r response
			if err := json.Unmarshal(d.Body, &r); err != nil {
				log.Fatalf("reply is not JSON: %s", err)
			}
			if r.Error != nil {
				log.Fatalf("error %d: %s", r.Error.Code, r.Error.Message)
			}
			log.Printf(" [.] Got %s", r.Result)
			return
		case <-ctx.Done():
			log.Fatalf("no reply within 10 s")
		}
	}
}
