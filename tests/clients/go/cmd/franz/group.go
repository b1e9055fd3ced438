package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kavka/tests/clients/go/internal/scenario"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member tracks a group member's assignment and prints it whenever it changes.
type member struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func (m *member) change(add bool, assigned map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, partitions := range assigned {
		for _, p := range partitions {
			if add {
				m.owned[p] = true
			} else {
				delete(m.owned, p)
			}
		}
	}
	now := []int32{}
	for p := range m.owned {
		now = append(now, p)
	}
	slices.Sort(now)
	scenario.Emit("assignment", map[string]any{"partitions": now})
}

// Group is one member of a consumer group: it prints its assignment, each polled batch as
// [partition, offset] pairs and then the offsets it committed, until SIGTERM (then it leaves).
// protocol "consumer" joins with KIP-848's ConsumerGroupHeartbeat (kgo.ServerSideBalancer).
func (f franz) Group(topic, name, protocol string) {
	ctx, cancel := scenario.StepContext(10 * time.Minute)
	defer cancel()
	m := &member{owned: map[int32]bool{}}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(name), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { m.change(true, a) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { m.change(false, r) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { m.change(false, l) }),
	}
	switch protocol {
	case "consumer":
		opts = append(opts, kgo.ServerSideBalancer())
	case "classic":
	default:
		scenario.Fail("unknown group protocol %q", protocol)
	}
	cl := f.newClient(opts...)
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				scenario.Emit("fetch_error", map[string]any{"partition": p, "error": errName(err)})
			}
		})
		consumed := [][2]int64{}
		fetches.EachRecord(func(r *kgo.Record) { consumed = append(consumed, [2]int64{int64(r.Partition), r.Offset}) })
		if len(consumed) > 0 {
			scenario.Emit("records", map[string]any{"records": consumed})
			commit(ctx, cl)
		}
		cl.AllowRebalance()
	}
	cl.Close()
	scenario.Emit("closed", nil)
}

// commit commits what the last poll returned and prints the offsets the client then holds committed.
func commit(ctx context.Context, cl *kgo.Client) {
	err := cl.CommitUncommittedOffsets(ctx)
	committed := map[int32]int64{}
	for _, partitions := range cl.CommittedOffsets() {
		for p, o := range partitions {
			committed[p] = o.Offset
		}
	}
	scenario.Emit("committed", map[string]any{"offsets": committed, "error": errName(err)})
}
