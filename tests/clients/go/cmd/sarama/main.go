// Command sarama runs the test-client scenario (tests/clients/README.md) with
// Sarama (github.com/IBM/sarama): SyncProducer, Consumer, ConsumerGroup (the
// classic protocol: Sarama has no KIP-848 consumer), Client.GetOffset and
// ClusterAdmin.  The steps and their arguments are in package scenario.
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

func main() {
	if os.Getenv("KAVKA_GO_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
		sarama.DebugLogger = sarama.Logger
	}
	scenario.Run(func(bootstrap string) scenario.Client { return client{addrs: strings.Split(bootstrap, ",")} })
}

// client is the scenario client on Sarama.
type client struct{ addrs []string }

// config is Sarama's configuration for Kafka 4.0, or for the Kafka version in
// $KAVKA_SARAMA_VERSION (Sarama caps its request versions at that Kafka's, and
// below those at what ApiVersions answers).
func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kavka-sarama"
	cfg.Version = sarama.V4_0_0_0
	if wanted := os.Getenv("KAVKA_SARAMA_VERSION"); wanted != "" {
		version, err := sarama.ParseKafkaVersion(wanted)
		scenario.Check(err, "KAVKA_SARAMA_VERSION")
		cfg.Version = version
	}
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

func (c client) connect(cfg *sarama.Config) sarama.Client {
	connected, err := sarama.NewClient(c.addrs, cfg)
	scenario.Check(err, "connecting")
	return connected
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

func (c client) Produce(topic, codecName string, sent []scenario.Record) {
	codec, ok := codecs[codecName]
	if !ok {
		scenario.Fail("unknown codec %q", codecName)
	}
	cfg := config()
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	c.produce(cfg, topic, sent)
}

// produce sends the records to their own partitions in one SendMessages and prints an "ack" per record.
func (c client) produce(cfg *sarama.Config, topic string, sent []scenario.Record) {
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	connected := c.connect(cfg)
	defer connected.Close()
	producer, err := sarama.NewSyncProducerFromClient(connected)
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

// Consume reads every partition from its oldest offset.
func (c client) Consume(topic string, partitions, count int) {
	connected := c.connect(config())
	defer connected.Close()
	consumer, err := sarama.NewConsumerFromClient(connected)
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

// Idempotent uses Sarama's idempotent producer with what it requires: MaxOpenRequests=1, acks=all.
func (c client) Idempotent(topic string, count int) {
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
	c.produce(cfg, topic, sent)
}

// Times uses Client.GetOffset, which answers -1 past the last record as Kafka does.
func (c client) Times(topic string, timestamps []int64) {
	connected := c.connect(config())
	defer connected.Close()
	partitions, err := connected.Partitions(topic)
	scenario.Check(err, "the topic's partitions")
	for _, ts := range timestamps {
		for _, p := range partitions {
			offset, err := connected.GetOffset(topic, p, ts)
			scenario.Emit("offset", map[string]any{"asked": ts, "partition": p, "offset": offset, "error": errName(err)})
		}
	}
	for _, p := range partitions {
		offset, err := connected.GetOffset(topic, p, sarama.OffsetNewest)
		scenario.Emit("end", map[string]any{"partition": p, "offset": offset, "error": errName(err)})
	}
}
