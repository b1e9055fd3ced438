// Command franz runs the test-client scenario (tests/clients/README.md) with
// franz-go: the kgo client for records and groups, kadm for offsets and admin.
//
//	franz records    BOOTSTRAP TOPIC CODEC PARTITIONS   < records (JSON lines)
//	franz read       BOOTSTRAP TOPIC PARTITIONS COUNT
//	franz idempotent BOOTSTRAP TOPIC COUNT
//	franz group      BOOTSTRAP TOPIC GROUP classic|consumer
//	franz times      BOOTSTRAP TOPIC TIMESTAMP...
//	franz admin      BOOTSTRAP TOPIC
package main

import (
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
	step(args)
}

// newClient is a kgo client for the bootstrap address, logging to stderr when KAVKA_GO_DEBUG is set.
func newClient(args scenario.Args, opts ...kgo.Opt) *kgo.Client {
	opts = append([]kgo.Opt{kgo.SeedBrokers(strings.Split(args.Bootstrap, ",")...), kgo.ClientID("kavka-franz")}, opts...)
	if os.Getenv("KAVKA_GO_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	scenario.Check(err, "creating the kgo client")
	return cl
}

func atoi(s, what string) int {
	n, err := strconv.Atoi(s)
	scenario.Check(err, what)
	return n
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

// records produces stdin's records with one codec to their partitions, then reads the topic back.
func records(args scenario.Args) {
	topic, codecName := args.Arg(0, "topic"), args.Arg(1, "codec")
	partitions := atoi(args.Arg(2, "partitions"), "partitions")
	codec, ok := codecs[codecName]
	if !ok {
		scenario.Fail("unknown codec %q", codecName)
	}
	sent := scenario.ReadRecords()
	produce(args, topic, sent, kgo.ProducerBatchCompression(codec))
	consume(args, topic, partitions, len(sent))
}

// read reads COUNT records of a topic another client wrote.
func read(args scenario.Args) {
	consume(args, args.Arg(0, "topic"), atoi(args.Arg(1, "partitions"), "partitions"), atoi(args.Arg(2, "count"), "count"))
}

// produce sends the records to their own partitions and prints an "ack" per record.
func produce(args scenario.Args, topic string, sent []scenario.Record, opts ...kgo.Opt) {
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	cl := newClient(args, append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))...)
	defer cl.Close()
	for _, r := range sent {
		record := &kgo.Record{Topic: topic, Partition: r.Partition, Key: scenario.Bytes(r.Key),
			Value: scenario.Bytes(r.Value)}
		if r.Timestamp != 0 {
			record.Timestamp = time.UnixMilli(r.Timestamp)
		}
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

// consume assigns every partition from its start and prints each record until count are read.
func consume(args scenario.Args, topic string, partitions, count int) {
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	assigned := map[int32]kgo.Offset{}
	for p := 0; p < partitions; p++ {
		assigned[int32(p)] = kgo.NewOffset().AtStart()
	}
	cl := newClient(args, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assigned}))
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

// idempotent writes COUNT records to partition 0 with the (default) idempotent producer, acks=all.
func idempotent(args scenario.Args) {
	topic, count := args.Arg(0, "topic"), atoi(args.Arg(1, "count"), "count")
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	cl := newClient(args, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
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

// times lists, per partition, the first offset at or after each timestamp.
func times(args scenario.Args) {
	topic := args.Arg(0, "topic")
	ctx, cancel := scenario.StepContext(scenario.Timeout)
	defer cancel()
	cl := newClient(args)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, arg := range args.Rest[1:] {
		ts := int64(atoi(arg, "timestamp"))
		listed, err := adm.ListOffsetsAfterMilli(ctx, ts, topic)
		scenario.Check(err, "listing offsets after "+arg)
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
