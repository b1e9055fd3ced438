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

// Args is the command line: PROGRAM STEP BOOTSTRAP [ARG...].
type Args struct {
	Step      string
	Bootstrap string
	Rest      []string
}

// ParseArgs reads the command line or exits with a usage line.
func ParseArgs(usage string) Args {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s STEP BOOTSTRAP [ARG...]\n%s\n", os.Args[0], usage)
		os.Exit(2)
	}
	return Args{Step: os.Args[1], Bootstrap: os.Args[2], Rest: os.Args[3:]}
}

// Arg is the i-th step argument, or the step fails naming what is missing.
func (a Args) Arg(i int, name string) string {
	if i >= len(a.Rest) {
		Fail("step %s needs argument %d (%s)", a.Step, i+1, name)
	}
	return a.Rest[i]
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
