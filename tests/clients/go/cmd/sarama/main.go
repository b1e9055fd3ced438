// Command sarama runs the test-client scenario (tests/clients/README.md) with
// Sarama (github.com/IBM/sarama): SyncProducer, Consumer, ConsumerGroup (the
// classic protocol: Sarama has no KIP-848 consumer), Client.GetOffset and
// ClusterAdmin.
//
//	sarama records    BOOTSTRAP TOPIC CODEC PARTITIONS   < records (JSON lines)
//	sarama read       BOOTSTRAP TOPIC PARTITIONS COUNT
//	sarama idempotent BOOTSTRAP TOPIC COUNT
//	sarama group      BOOTSTRAP TOPIC GROUP classic
//	sarama times      BOOTSTRAP TOPIC TIMESTAMP...
//	sarama admin      BOOTSTRAP TOPIC
package main

import (
	"errors"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/kavka/tests/clients/go/internal/scenario"
)

const usage = "steps: records, read, idempotent, group, times, admin"

func main() {
	args := scenario.ParseArgs(usage)
	steps := map[string]func(scenario.Args){
		"records": records, "read": read, "idempotent": idempotent,
		"group": group, "times": times, "admin": admin,
	}
	step, ok := steps[args.Step]
	if !ok {
		scenario.Fail("unknown step %q (%s)", args.Step, usage)
	}
	if os.Getenv("KAVKA_GO_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
		sarama.DebugLogger = sarama.Logger
	}
	step(args)
}

// config is Sarama's configuration for Kafka 4.0 (it then negotiates versions with ApiVersions).
func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kavka-sarama"
	cfg.Version = sarama.V4_0_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

func newClient(args scenario.Args, cfg *sarama.Config) sarama.Client {
	client, err := sarama.NewClient(strings.Split(args.Bootstrap, ","), cfg)
	scenario.Check(err, "connecting")
	return client
}

func atoi(s, what string) int {
	n, err := strconv.Atoi(s)
	scenario.Check(err, what)
	return n
}

// errName is Kafka's name of a Sarama error (a KError or a TopicError's), its text otherwise.
func errName(err error) string {
	var kafkaErr sarama.KError
	var topicErr *sarama.TopicError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &topicErr):
		return scenario.ErrorName(int16(topicErr.Err))
	case errors.As(err, &kafkaErr):
		return scenario.ErrorName(int16(kafkaErr))
	default:
		return err.Error()
	}
}

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

// records produces stdin's records with one codec to their partitions, then reads the topic back.
func records(args scenario.Args) {
	topic, codecName := args.Arg(0, "topic"), args.Arg(1, "codec")
	partitions := atoi(args.Arg(2, "partitions"), "partitions")
	codec, ok := codecs[codecName]
	if !ok {
		scenario.Fail("unknown codec %q", codecName)
	}
	sent := scenario.ReadRecords()
	cfg := config()
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	produce(args, cfg, topic, sent)
	consume(args, topic, partitions, len(sent))
}

// read reads COUNT records of a topic another client wrote.
func read(args scenario.Args) {
	consume(args, args.Arg(0, "topic"), atoi(args.Arg(1, "partitions"), "partitions"), atoi(args.Arg(2, "count"), "count"))
}

// produce sends the records to their own partitions in one SendMessages and prints an "ack" per record.
func produce(args scenario.Args, cfg *sarama.Config, topic string, sent []scenario.Record) {
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	client := newClient(args, cfg)
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	scenario.Check(err, "creating the producer")
	defer producer.Close()
	messages := make([]*sarama.ProducerMessage, 0, len(sent))
	for _, r := range sent {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Timestamp: time.UnixMilli(r.Timestamp)}
		if r.Key != nil {
			m.Key = sarama.StringEncoder(*r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.StringEncoder(*r.Value)
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
		}
		messages = append(messages, m)
	}
	scenario.Check(producer.SendMessages(messages), "producing")
	for _, m := range messages {
		var key *string
		if m.Key != nil {
			key = scenario.Text([]byte(m.Key.(sarama.StringEncoder)))
		}
		scenario.Emit("ack", map[string]any{"partition": m.Partition, "offset": m.Offset, "key": key})
	}
}

// consume reads every partition from its oldest offset and prints each record until count are read.
func consume(args scenario.Args, topic string, partitions, count int) {
	client := newClient(args, config())
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	scenario.Check(err, "creating the consumer")
	defer consumer.Close()
	messages := make(chan *sarama.ConsumerMessage)
	for p := 0; p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, int32(p), sarama.OffsetOldest)
		scenario.Check(err, "consuming partition "+strconv.Itoa(p))
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				messages <- m
			}
		}()
	}
	deadline := time.After(scenario.Timeout)
	for read := 0; read < count; read++ {
		select {
		case m := <-messages:
			scenario.EmitRecord("record", fromSarama(m))
		case <-deadline:
			scenario.Fail("read %d of %d records in %s", read, count, scenario.Timeout)
		}
	}
}

func fromSarama(m *sarama.ConsumerMessage) scenario.Record {
	headers := [][2]string{}
	for _, h := range m.Headers {
		headers = append(headers, [2]string{string(h.Key), string(h.Value)})
	}
	return scenario.Record{Partition: m.Partition, Offset: m.Offset, Key: scenario.Text(m.Key),
		Value: scenario.Text(m.Value), Headers: headers, Timestamp: m.Timestamp.UnixMilli()}
}

// idempotent writes COUNT records to partition 0 with Sarama's idempotent producer
// (Idempotent, MaxOpenRequests=1, acks=all, as Sarama requires).
func idempotent(args scenario.Args) {
	topic, count := args.Arg(0, "topic"), atoi(args.Arg(1, "count"), "count")
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Flush.Frequency = time.Millisecond
	sent := make([]scenario.Record, count)
	for i := range sent {
		value := "idem-" + strconv.Itoa(i)
		sent[i] = scenario.Record{Value: &value, Timestamp: time.Now().UnixMilli()}
	}
	produce(args, cfg, topic, sent)
}

// times lists, per partition, the first offset at or after each timestamp, then the end offsets.
func times(args scenario.Args) {
	topic := args.Arg(0, "topic")
	client := newClient(args, config())
	defer client.Close()
	partitions, err := client.Partitions(topic)
	scenario.Check(err, "the topic's partitions")
	for _, arg := range args.Rest[1:] {
		ts := int64(atoi(arg, "timestamp"))
		for _, p := range partitions {
			offset, err := client.GetOffset(topic, p, ts)
			scenario.Emit("offset", map[string]any{"asked": ts, "partition": p, "offset": offset, "error": errName(err)})
		}
	}
	for _, p := range partitions {
		offset, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		scenario.Emit("end", map[string]any{"partition": p, "offset": offset, "error": errName(err)})
	}
}
