// Package scenario holds what both Go test clients share: the command line
// (step, bootstrap address, step arguments), the records the test sends on
// stdin and the JSON lines every step prints for the pytest module to check.
package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Record is one record as the test describes it: a nil Key or Value is null.
type Record struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
	Timestamp int64       `json:"timestamp"`
}

// Bytes is the byte form of a nullable string: nil stays nil, "" is empty.
func Bytes(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// Text is the nullable string form of bytes as a client returned them.
func Text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

var outMu sync.Mutex

// Emit prints one observation as a JSON line: {"event": event, ...fields}.
func Emit(event string, fields map[string]any) {
	line := map[string]any{"event": event}
	for k, v := range fields {
		line[k] = v
	}
	data, err := json.Marshal(line)
	if err != nil {
		Fail("encoding %s: %v", event, err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(data, '\n'))
}

// EmitRecord prints a record read back, with the client's name for its fields.
func EmitRecord(event string, r Record) {
	Emit(event, map[string]any{"partition": r.Partition, "offset": r.Offset, "key": r.Key,
		"value": r.Value, "headers": r.Headers, "timestamp": r.Timestamp})
}

// Fail prints the error as an "error" line and exits 1.
func Fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	data, _ := json.Marshal(map[string]any{"event": "error", "message": msg})
	outMu.Lock()
	os.Stdout.Write(append(data, '\n'))
	outMu.Unlock()
	os.Exit(1)
}

// Check fails the step when err is not nil.
func Check(err error, what string) {
	if err != nil {
		Fail("%s: %v", what, err)
	}
}

// ReadRecords reads the records to produce, one JSON object a line, from stdin.
func ReadRecords() []Record {
	var records []Record
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var r Record
		Check(json.Unmarshal(scanner.Bytes(), &r), "reading a record from stdin")
		records = append(records, r)
	}
	Check(scanner.Err(), "reading stdin")
	return records
}

// Client is what each program implements: one method per step, its arguments parsed.
type Client interface {
	// Produce sends the records with one codec to their own partitions, printing an "ack" each.
	Produce(topic, codec string, records []Record)
	// Consume reads the topic's partitions from their start, printing each record, until count are read.
	Consume(topic string, partitions, count int)
	// Idempotent writes count records to partition 0 with an idempotent producer, acks=all.
	Idempotent(topic string, count int)
	// Group is one consumer-group member until SIGTERM.
	Group(topic, group, protocol string)
	// Times lists each partition's first offset at or after each timestamp, then its end offset.
	Times(topic string, timestamps []int64)
	// Admin creates, describes and deletes a topic.
	Admin(topic string)
}

const usage = `usage: PROGRAM STEP BOOTSTRAP ARG...
  records    BOOTSTRAP TOPIC CODEC PARTITIONS   < records (JSON lines)
  read       BOOTSTRAP TOPIC PARTITIONS COUNT
  idempotent BOOTSTRAP TOPIC COUNT
  group      BOOTSTRAP TOPIC GROUP classic|consumer
  times      BOOTSTRAP TOPIC TIMESTAMP...
  admin      BOOTSTRAP TOPIC`

// Run parses the command line and runs its step with the client made for the bootstrap address.
func Run(newClient func(bootstrap string) Client) {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	step, c, rest := os.Args[1], newClient(os.Args[2]), os.Args[3:]
	arg := func(i int, name string) string {
		if i >= len(rest) {
			Fail("step %s needs argument %d (%s)\n%s", step, i+1, name, usage)
		}
		return rest[i]
	}
	number := func(i int, name string) int {
		n, err := strconv.Atoi(arg(i, name))
		Check(err, name)
		return n
	}
	switch step {
	case "records":
		sent := ReadRecords()
		c.Produce(arg(0, "topic"), arg(1, "codec"), sent)
		c.Consume(arg(0, "topic"), number(2, "partitions"), len(sent))
	case "read":
		c.Consume(arg(0, "topic"), number(1, "partitions"), number(2, "count"))
	case "idempotent":
		c.Idempotent(arg(0, "topic"), number(1, "count"))
	case "group":
		c.Group(arg(0, "topic"), arg(1, "group"), arg(2, "protocol"))
	case "times":
		var timestamps []int64
		for i := 1; i < len(rest); i++ {
			timestamps = append(timestamps, int64(number(i, "timestamp")))
		}
		c.Times(arg(0, "topic"), timestamps)
	case "admin":
		c.Admin(arg(0, "topic"))
	default:
		Fail("unknown step %q\n%s", step, usage)
	}
}

// Timeout bounds a whole step: every step is given this long.
const Timeout = 60 * time.Second

// StepContext ends at the step's timeout or on SIGTERM/SIGINT (a group member's graceful stop).
func StepContext(limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	return ctx, func() { stop(); cancel() }
}

// ErrorName is Kafka's name for an error code ("TOPIC_ALREADY_EXISTS"), "" for 0.
func ErrorName(code int16) string {
	if code == 0 {
		return ""
	}
	if err, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return err.Message
	}
	return fmt.Sprintf("error code %d", code)
}
