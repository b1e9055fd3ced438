// Command franz runs the test-client scenario (tests/clients/README.md) with
// franz-go: the kgo client for records and groups, kadm for offsets and admin.
// The steps and their arguments are in package scenario.
package main

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kavka/tests/clients/go/internal/scenario"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	scenario.Run(func(bootstrap string) scenario.Client { return franz{seeds: strings.Split(bootstrap, ",")} })
}

// franz is the scenario client on franz-go.
type franz struct{ seeds []string }

// newClient is a kgo client for the seed brokers, logging to stderr when KAVKA_GO_DEBUG is set.
func (f franz) newClient(opts ...kgo.Opt) *kgo.Client {
	opts = append([]kgo.Opt{kgo.SeedBrokers(f.seeds...), kgo.ClientID("kavka-franz")}, opts...)
	if os.Getenv("KAVKA_GO_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	scenario.Check(err, "creating the kgo client")
	return cl
}

// newAdmin is a kadm client with the step's context, and what ends both.
func (f franz) newAdmin() (context.Context, *kadm.Client, func()) {
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	cl := f.newClient()
	return ctx, kadm.NewClient(cl), func() { cl.Close(); cancel() }
}

// errName is Kafka's name of a client error ("TOPIC_ALREADY_EXISTS"), its text otherwise, "" for none.
func errName(err error) string {
	var kafkaErr *kerr.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &kafkaErr):
		return kafkaErr.Message
	default:
		return err.Error()
	}
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func (f franz) Produce(topic, codecName string, sent []scenario.Record) {
	codec, ok := codecs[codecName]
	if !ok {
		scenario.Fail("unknown codec %q", codecName)
	}
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	cl := f.newClient(kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	defer cl.Close()
	for _, r := range sent {
		record := &kgo.Record{Topic: topic, Partition: r.Partition, Key: scenario.Bytes(r.Key),
			Value: scenario.Bytes(r.Value), Timestamp: time.UnixMilli(r.Timestamp)}
		for _, h := range r.Headers {
			record.Headers = append(record.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		cl.Produce(ctx, record, func(got *kgo.Record, err error) {
			scenario.Check(err, "producing")
			scenario.Emit("ack", map[string]any{"partition": got.Partition, "offset": got.Offset,
				"key": scenario.Text(got.Key)})
		})
	}
	scenario.Check(cl.Flush(ctx), "flushing")
}

func (f franz) Consume(topic string, partitions, count int) {
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	assigned := map[int32]kgo.Offset{}
	for p := 0; p < partitions; p++ {
		assigned[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl := f.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assigned}))
	defer cl.Close()
	for read := 0; read < count; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			scenario.Fail("read %d of %d records: %v", read, count, ctx.Err())
		}
		fetches.EachError(func(t string, p int32, err error) { scenario.Fail("fetching %s-%d: %v", t, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			scenario.EmitRecord("record", fromKgo(r))
			read++
		})
	}
}

func fromKgo(r *kgo.Record) scenario.Record {
	headers := [][2]string{}
	for _, h := range r.Headers {
		headers = append(headers, [2]string{h.Key, string(h.Value)})
	}
	return scenario.Record{Partition: r.Partition, Offset: r.Offset, Key: scenario.Text(r.Key),
		Value: scenario.Text(r.Value), Headers: headers, Timestamp: r.Timestamp.UnixMilli()}
}

// Idempotent uses kgo's default producer, which is idempotent (up to 5 requests in flight).
func (f franz) Idempotent(topic string, count int) {
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	cl := f.newClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(count+1))
	defer cl.Close()
	for i := 0; i < count; i++ {
		value := "idem-" + strconv.Itoa(i)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}, func(got *kgo.Record, err error) {
			scenario.Check(err, "producing "+value)
			scenario.Emit("ack", map[string]any{"partition": got.Partition, "offset": got.Offset,
				"value": string(got.Value), "producer_id": got.ProducerID, "producer_epoch": got.ProducerEpoch})
		})
	}
	scenario.Check(cl.Flush(ctx), "flushing")
	id, epoch, err := cl.ProducerID(ctx)
	scenario.Check(err, "the producer id")
	scenario.Emit("producer", map[string]any{"producer_id": id, "producer_epoch": epoch})
}

// Times uses kadm.ListOffsetsAfterMilli, which answers the end offset where Kafka answers -1.
func (f franz) Times(topic string, timestamps []int64) {
	ctx, adm, done := f.newAdmin()
	defer done()
	for _, ts := range timestamps {
		listed, err := adm.ListOffsetsAfterMilli(ctx, ts, topic)
		scenario.Check(err, "listing offsets after "+strconv.FormatInt(ts, 10))
		listed.Each(func(o kadm.ListedOffset) {
			scenario.Emit("offset", map[string]any{"asked": ts, "partition": o.Partition, "offset": o.Offset,
				"timestamp": o.Timestamp, "error": errName(o.Err)})
		})
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	scenario.Check(err, "listing end offsets")
	ends.Each(func(o kadm.ListedOffset) {
		scenario.Emit("end", map[string]any{"partition": o.Partition, "offset": o.Offset, "error": errName(o.Err)})
	})
}
